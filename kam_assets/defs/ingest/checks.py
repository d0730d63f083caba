"""Blocking Great Expectations checks on the raw assets (keys, references, values, dates)."""

from datetime import date

import dagster as dg

from kam_assets.defs.checks_util import check_spec, evaluate
from kam_assets.defs.ingest.assets import raw_asset_key
from kam_assets.partitions import as_of_date
from kam_assets.resources import KamResource
from pipelines.quality import raw_checks

RAW_CHECKS = [(check, raw_asset_key(*check.asset)) for check in raw_checks()]


@dg.multi_asset_check(
    name="raw_quality_checks",
    specs=[check_spec(check, key) for check, key in RAW_CHECKS],
    can_subset=True,
    description="Great Expectations on the raw layer; a failure stops dbt and the publish.",
)
def raw_quality_checks(context: dg.AssetCheckExecutionContext, kam: KamResource):
    settings = kam.settings()
    # Future dates are judged against the wall clock: facts after the as-of date are
    # legitimate on a backfill (dbt cuts them), facts after today are impossible.
    yield from evaluate(
        context,
        settings.work_db,
        RAW_CHECKS,
        as_of_date(context),
        date.today(),
        stage="raw",
        settings=settings,
    )
