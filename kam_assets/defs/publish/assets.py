"""The published warehouse: the work DB's marts (+ audit), after re-validating them."""

import time
from datetime import date
from pathlib import Path

import dagster as dg

from kam_assets.defs.publish.marts import mart_asset_keys, mart_checks
from kam_assets.partitions import as_of_date, daily_partitions
from kam_assets.resources import KamResource
from pipelines.quality import CheckContext, run_checks
from pipelines.settings import Settings
from pipelines.sources import mask_url


def revalidate_marts(settings: Settings, as_of: date) -> list[str]:
    """Run every mart check again; the failures as text (empty = all passed).

    Blocking checks only gate inside one run: a publish materialized alone must not
    skip the gate, so it runs the same checks itself.
    """
    checks = [check for check, _ in mart_checks()]
    outcomes = run_checks(settings.work_db, checks, CheckContext(as_of=as_of, today=date.today()))
    return [outcome.summary() for _, outcome in outcomes if not outcome.success]


def _publish(settings: Settings, run_id: str, as_of: str):
    target = settings.warehouse
    if target.startswith(("postgresql://", "postgresql+", "postgres://")):
        from pipelines import publish_postgres  # optional backend

        return publish_postgres.publish_postgres(settings.work_db, target, run_id, as_of)
    from pipelines.publish import publish_duckdb

    return publish_duckdb(
        settings.work_db,
        Path(target),
        run_id,
        as_of,
        storage_version=settings.duckdb_storage_version,
        retention=settings.warehouse_retention,
    )


@dg.asset(
    key=["warehouse"],
    deps=mart_asset_keys(),
    partitions_def=daily_partitions(),
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    group_name="publish",
    kinds={"duckdb"},
    description=(
        "The published warehouse (KAM_WAREHOUSE): schema marts (+ audit), replaced "
        "atomically. Re-validates the marts first and refuses to publish on any failure."
    ),
)
def warehouse(context: dg.AssetExecutionContext, kam: KamResource) -> dg.MaterializeResult:
    settings = kam.settings()
    as_of = as_of_date(context)
    started = time.perf_counter()
    failures = revalidate_marts(settings, as_of)
    if failures:
        raise dg.Failure(
            description="mart checks failed, nothing published:\n" + "\n".join(failures),
            metadata={"failed_checks": dg.MetadataValue.json(failures)},
        )
    result = _publish(settings, context.run.run_id, as_of.isoformat())
    seconds = time.perf_counter() - started
    context.log.info("published %d tables to %s", len(result.tables), mask_url(result.target))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.text(mask_url(result.target)),
            "tables": dg.MetadataValue.json(dict(result.tables)),
            "table_count": dg.MetadataValue.int(len(result.tables)),
            "rows": dg.MetadataValue.int(sum(result.tables.values())),
            "version": dg.MetadataValue.text(str(result.version)),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "publish_seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        }
    )
