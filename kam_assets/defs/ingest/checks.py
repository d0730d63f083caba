"""Blocking Great Expectations checks on the raw assets (keys, references, values, dates).

Future dates are judged against the run's "today": facts after the as-of date are
legitimate on a backfill (dbt cuts them), facts after today are impossible.
"""

import dagster as dg

from kam_assets.defs.checks_util import quality_checks
from kam_assets.defs.ingest.assets import raw_asset_key
from pipelines.quality.raw_checks import raw_checks


def raw_quality_checks() -> dg.AssetChecksDefinition:
    return quality_checks(
        "raw_quality_checks",
        [(check, raw_asset_key(*check.asset)) for check in raw_checks()],
        stage="raw",
        description="Great Expectations on the raw layer; a failure stops dbt and the publish.",
    )
