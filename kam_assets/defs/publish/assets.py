"""The published warehouse: the work DB's marts (+ audit), once they are known good.

The mart checks of the same run passed on these very marts (their step recorded a
fingerprint: per mart, row count and content hash), or the publish step runs them itself
(materialized alone, a check not passed in this run, or marts changed since).
"""

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from kam_assets.defs.checks_util import report_metadata, write_run_reports
from kam_assets.defs.publish.marts import mart_asset_keys, mart_checks
from kam_assets.partitions import BACKFILL_POLICY, daily_partitions, run_parameters
from kam_assets.resources import KamResource
from pipelines.quality.checks import check_context, check_name
from pipelines.quality.child import MART_STAGE, run_stage_checks
from pipelines.quality.fingerprint import Verification, verify
from pipelines.quality.reports import INDEX_NAME, prune_reports
from pipelines.run_params import RunParameters
from pipelines.secrets import mask_url
from pipelines.settings import Settings

REVALIDATION_STAGE = "publish"


@dataclass
class Revalidation:
    """How the publish step knows the marts are good: verified against the fingerprint the
    run's mart checks recorded, or its own run of the mart checks."""

    failures: list[str] = field(default_factory=list)  # summaries of failed checks
    failed_checks: list[str] = field(default_factory=list)  # their names
    checks: int = 0  # mart checks run by the publish step (0 when verified)
    index: Path | None = None  # the run's validation report
    verified: bool = False  # the marts are those the run's passed checks saw
    reason: str = ""  # what was verified, or why the checks ran again


def revalidate_marts(
    settings: Settings, params: RunParameters, run_id: str | None = None, log=None
) -> Revalidation:
    """Run every mart check again (written to the run's report when ``run_id`` is given).

    Blocking checks only gate inside one run: a publish materialized alone must not
    skip the gate, so it runs the same checks itself.
    """
    checks = [check for check, _ in mart_checks()]
    ctx = check_context(settings, params)
    # in a child process on a large work DB: their memory returned when it ends
    outcomes = run_stage_checks(settings.work_db, MART_STAGE, checks, ctx).outcomes
    out = Revalidation(checks=len(outcomes))
    for _check, outcome in outcomes:
        if not outcome.success:
            out.failures.append(outcome.summary())
            out.failed_checks.append(outcome.name)
    if run_id is not None and log is not None and outcomes:
        report = write_run_reports(log, settings, run_id, REVALIDATION_STAGE, outcomes, ctx)
        out.index = report.index if report else None
    return out


def verify_or_revalidate(
    settings: Settings, params: RunParameters, run_id: str, log
) -> Revalidation:
    """Publish-ready when this run's mart checks all passed on marts whose fingerprint
    is unchanged now; otherwise run every mart check again (:func:`revalidate_marts`)."""
    checks = [check for check, _ in mart_checks()]
    try:
        verification = verify(
            settings.work_db,
            settings.reports_dir,
            run_id,
            [check_name(c) for c in checks],
            [c.relation for c in checks],
        )
    except Exception as exc:  # cannot verify: check again, never publish unchecked
        verification = Verification(False, f"cannot verify: {type(exc).__name__}: {exc}")
    if verification.verified:
        log.info("marts verified, checks not re-run: %s", verification.reason)
        # the run's validation report, written by the mart checks that passed
        index = settings.reports_dir / run_id / INDEX_NAME
        return Revalidation(
            verified=True, reason=verification.reason, index=index if index.is_file() else None
        )
    log.info("re-running the mart checks: %s", verification.reason)
    out = revalidate_marts(settings, params, run_id, log)
    out.reason = verification.reason
    return out


def _publish(settings: Settings, run_id: str, as_of: date):
    target = settings.warehouse
    if settings.warehouse_is_postgres:
        from pipelines.publish.postgres import publish_postgres  # optional backend

        return publish_postgres(
            settings.work_db,
            target,
            run_id,
            as_of,
            bi_role=settings.bi_role,
            lock_timeout_ms=settings.pg_lock_timeout_ms,
            retries=settings.pg_publish_retries,
            schema_prefix=settings.pg_schema_prefix,
            audit_role=settings.audit_role,
        )
    from pipelines.publish.duckdb_file import publish_duckdb

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
    backfill_policy=BACKFILL_POLICY,
    group_name="publish",
    kinds={"duckdb", "postgres"},
    description=(
        "The published warehouse (KAM_WAREHOUSE): schema marts (+ audit), replaced "
        "atomically. Publishes the marts this run's mart checks passed on (verified by "
        "fingerprint), else re-runs the checks; refuses to publish on any failure."
    ),
)
def warehouse(context: dg.AssetExecutionContext, kam: KamResource) -> dg.MaterializeResult:
    settings = kam.settings()
    params = run_parameters(context, settings)
    started = time.perf_counter()
    gate = verify_or_revalidate(settings, params, context.run.run_id, context.log)
    if gate.failures:
        report = f"\nvalidation report: {gate.index}" if gate.index else ""
        raise dg.Failure(
            description=(
                f"mart checks failed ({', '.join(gate.failed_checks)}), nothing published:\n"
                + "\n".join(gate.failures)
                + report
            ),
            metadata={
                "failed_checks": dg.MetadataValue.json(gate.failed_checks),
                "failures": dg.MetadataValue.json(gate.failures),
                **report_metadata(None, gate.index),
            },
        )
    result = _publish(settings, context.run.run_id, params.as_of)
    seconds = time.perf_counter() - started
    context.log.info("published %d tables to %s", len(result.tables), mask_url(result.target))
    pruned = prune_reports(
        settings.reports_dir,
        settings.report_retention_days,
        keep_run_ids=[context.run.run_id],
    )
    if pruned:
        context.log.info(
            "removed %d report folders older than %d days (KAM_REPORT_RETENTION_DAYS)",
            len(pruned),
            settings.report_retention_days,
        )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.text(mask_url(result.target)),
            "tables": dg.MetadataValue.json(dict(result.tables)),
            "table_count": dg.MetadataValue.int(len(result.tables)),
            "rows": dg.MetadataValue.int(sum(result.tables.values())),
            "version": dg.MetadataValue.text(str(result.version)),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "publish_seconds": dg.MetadataValue.float(round(result.seconds, 3)),
            "checks_revalidated": dg.MetadataValue.int(gate.checks),
            "marts_verified_by_fingerprint": dg.MetadataValue.bool(gate.verified),
            "gate": dg.MetadataValue.text(gate.reason),
            "report_folders_removed": dg.MetadataValue.int(len(pruned)),
            **report_metadata(None, gate.index),
        }
    )
