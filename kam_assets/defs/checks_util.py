"""Turning pipelines.quality checks into blocking Dagster asset checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import dagster as dg

from pipelines.quality import CheckContext, CheckOutcome, FrameCheck, outcome_metadata, run_checks


def check_spec(check: FrameCheck, asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=check.name,
        asset=asset_key,
        description=f"[Great Expectations] {check.description}",
        blocking=True,
        metadata={"columns": ", ".join(check.columns), "relation": check.relation},
    )


def check_result(
    check: FrameCheck, asset_key: dg.AssetKey, outcome: CheckOutcome
) -> dg.AssetCheckResult:
    meta = outcome_metadata(outcome, check)
    metadata = {
        "expectations_evaluated": dg.MetadataValue.int(meta["expectations_evaluated"]),
        "failed_expectations": dg.MetadataValue.int(meta["failed_expectations"]),
        "rows": dg.MetadataValue.int(meta["rows"]),
        "failures": dg.MetadataValue.json(meta["failures"]),
        "seconds": dg.MetadataValue.float(meta["seconds"]),
        "summary": dg.MetadataValue.text(outcome.summary()),
    }
    if outcome.error:
        metadata["error"] = dg.MetadataValue.text(outcome.error)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=check.name,
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=None if outcome.success else outcome.summary()[:1000],
    )


def evaluate(
    context: dg.AssetCheckExecutionContext,
    work_db,
    checks: Sequence[tuple[FrameCheck, dg.AssetKey]],
    as_of: date,
    today: date,
) -> Iterable[dg.AssetCheckResult]:
    """Run the checks selected in this step and yield one result per check."""
    selected = context.selected_asset_check_keys
    todo = [(check, key) for check, key in checks if dg.AssetCheckKey(key, check.name) in selected]
    ctx = CheckContext(as_of=as_of, today=today)
    by_check = dict(todo)
    for check, outcome in run_checks(work_db, [c for c, _ in todo], ctx):
        key = by_check[check]
        if outcome.success:
            context.log.info("check passed: %s", outcome.summary())
        else:
            context.log.error("check FAILED: %s", outcome.summary())
        yield check_result(check, key, outcome)
