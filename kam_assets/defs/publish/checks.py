"""Blocking Great Expectations checks on the marts: the gate before publishing."""

import dagster as dg

from kam_assets.defs.checks_util import quality_checks
from kam_assets.defs.publish.marts import mart_checks


def mart_quality_checks() -> dg.AssetChecksDefinition:
    return quality_checks(
        "mart_quality_checks",
        mart_checks(),
        stage="marts",
        description="Great Expectations on the marts; a failure stops the publish.",
    )
