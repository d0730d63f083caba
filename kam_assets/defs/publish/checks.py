"""Blocking Great Expectations checks on the marts: the gate before publishing."""

from datetime import date

import dagster as dg

from kam_assets.defs.checks_util import check_spec, evaluate
from kam_assets.defs.publish.marts import mart_checks
from kam_assets.partitions import as_of_date
from kam_assets.resources import KamResource

MART_CHECKS = mart_checks()


@dg.multi_asset_check(
    name="mart_quality_checks",
    specs=[check_spec(check, key) for check, key in MART_CHECKS],
    can_subset=True,
    description="Great Expectations on the marts; a failure stops the publish.",
)
def mart_quality_checks(context: dg.AssetCheckExecutionContext, kam: KamResource):
    settings = kam.settings()
    yield from evaluate(
        context,
        settings.work_db,
        MART_CHECKS,
        as_of_date(context),
        date.today(),
        stage="marts",
        settings=settings,
    )
