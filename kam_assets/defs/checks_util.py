"""Turning pipelines.quality checks into blocking Dagster asset checks, with HTML reports.

Every evaluation writes its validation report (one HTML page + JSON copy per check and a
run index, see :mod:`pipelines.quality.reports`) under ``Settings.reports_dir / <run_id>``; the
check results link to them in their metadata and the step log prints the index path.
"""

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from kam_assets.partitions import run_parameters
from kam_assets.resources import KamResource
from pipelines.child_process import STDERR_TAIL
from pipelines.quality.checks import (
    CheckContext,
    CheckOutcome,
    FrameCheck,
    check_context,
    check_name,
    outcome_metadata,
)
from pipelines.quality.child import run_stage_checks
from pipelines.quality.fingerprint import write_record
from pipelines.quality.reports import CheckReport, RunReport, write_reports
from pipelines.run_params import RunParameters
from pipelines.settings import Settings

#: the report stage of the mart checks: its step records the checked marts' fingerprint
MART_STAGE = "marts"


def check_spec(check: FrameCheck, asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=check.name,
        asset=asset_key,
        description=f"[Great Expectations] {check.description}",
        blocking=True,
        metadata={"columns": ", ".join(check.columns), "relation": check.relation},
    )


def report_metadata(report: CheckReport | None, index: Path | None) -> dict[str, Any]:
    """Where a check's report page, its JSON copy and the run index are on disk (paths to
    copy). No file:// link: browsers refuse one from an http page such as the UI's, so the
    check's own Markdown ("result") carries what the report says (failures, sample rows)."""
    metadata: dict[str, Any] = {}
    if report is not None:
        metadata["report"] = dg.MetadataValue.path(str(report.html))
        metadata["report_json"] = dg.MetadataValue.path(str(report.json))
    if index is not None:
        metadata["report_index"] = dg.MetadataValue.path(str(index))
    return metadata


def _notes_metadata(notes: Mapping[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for key, value in notes.items():
        metadata[key] = dg.MetadataValue.json(value if isinstance(value, dict | list) else [value])
    band = notes.get("revenue_band")
    if isinstance(band, Mapping):
        for field in ("value", "low", "high", "median", "mad"):
            if isinstance(band.get(field), int | float):
                metadata[f"revenue_band_{field}"] = dg.MetadataValue.float(float(band[field]))
        metadata["revenue_band_history_days"] = dg.MetadataValue.int(int(band["history_days"]))
    return metadata


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")[:80]


def markdown_summary(check: FrameCheck, outcome: CheckOutcome) -> str:
    """What the check found, readable in the UI: verdict, failed expectations with their
    counts, and a few failing rows (the HTML report has every detail)."""
    verdict = "passed" if outcome.success else "FAILED"
    lines = [f"**{check.relation}: {check.name} {verdict}**", "", check.description, ""]
    if outcome.error:
        lines += [f"Error: `{_cell(outcome.error)}`", ""]
    if outcome.skipped:
        lines += [f"Skipped: {outcome.skipped}", ""]
    lines.append(f"{outcome.evaluated} expectations on {outcome.rows:,} rows.")
    if outcome.failures:
        lines += [
            "",
            "| expectation | column | unexpected rows | sample |",
            "| --- | --- | ---: | --- |",
        ]
        for failure in outcome.failures[:10]:
            lines.append(
                f"| {_cell(failure.get('expectation'))} | {_cell(failure.get('column'))} "
                f"| {failure.get('unexpected_count') or ''} "
                f"| {_cell(failure.get('sample') or '')} |"
            )
        rows = [row for failure in outcome.failures for row in failure.get("sample_rows") or []]
        if rows:
            columns = list(rows[0])[:8]
            lines += ["", "Failing rows (first 5):", ""]
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + " --- |" * len(columns))
            for row in rows[:5]:
                lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def check_result(
    check: FrameCheck,
    asset_key: dg.AssetKey,
    outcome: CheckOutcome,
    report: CheckReport | None = None,
    index: Path | None = None,
) -> dg.AssetCheckResult:
    meta = outcome_metadata(outcome, check)
    metadata = {
        "expectations_evaluated": dg.MetadataValue.int(meta["expectations_evaluated"]),
        "failed_expectations": dg.MetadataValue.int(meta["failed_expectations"]),
        "rows": dg.MetadataValue.int(meta["rows"]),
        "failures": dg.MetadataValue.json(meta["failures"]),
        "seconds": dg.MetadataValue.float(meta["seconds"]),
        "summary": dg.MetadataValue.text(outcome.summary()),
        "result": dg.MetadataValue.md(markdown_summary(check, outcome)),
    }
    if outcome.error:
        metadata["error"] = dg.MetadataValue.text(outcome.error)
    if outcome.skipped:
        metadata["skipped"] = dg.MetadataValue.text(outcome.skipped)
    metadata.update(_notes_metadata(outcome.notes))
    metadata.update(report_metadata(report, index))
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=check.name,
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=None if outcome.success else outcome.summary()[:1000],
    )


def _settings_of(context: dg.AssetCheckExecutionContext) -> Settings:
    """The settings of the step's ``kam`` resource; the environment if it has none."""
    try:
        kam = context.resources.kam
    except Exception:  # the check did not ask for the resource
        return Settings.from_env()
    return kam.settings()


def _default_stage(checks: Iterable[FrameCheck]) -> str:
    return "marts" if all(c.asset[0] == "marts" for c in checks) else "raw"


def write_run_reports(
    log: Any,
    settings: Settings,
    run_id: str,
    stage: str,
    results: Sequence[tuple[FrameCheck, CheckOutcome]],
    ctx: CheckContext,
) -> RunReport | None:
    """Write the reports of ``results``; log the index path. A report that cannot be
    written is a warning, never a change of verdict (the checks' results stand)."""
    try:
        report = write_reports(settings.reports_dir, run_id, stage, results, ctx)
    except Exception as exc:
        log.warning("could not write the validation report: %s: %s", type(exc).__name__, exc)
        return None
    log.info("validation report (%s checks): %s", stage, report.index)
    return report


def _record_fingerprint(
    log: Any,
    settings: Settings,
    run_id: str,
    tables: Mapping[str, Mapping[str, Any]],
    outcomes: Sequence[tuple[FrameCheck, CheckOutcome]],
) -> None:
    """Record the checked marts' fingerprint and verdicts for the publish step (a record
    that cannot be written only makes the publish step run the checks again)."""
    verdicts = {check_name(c): o.success for c, o in outcomes}
    try:
        path = write_record(settings.reports_dir, run_id, tables, verdicts)
    except Exception as exc:
        log.warning("could not record the marts' fingerprint: %s: %s", type(exc).__name__, exc)
        return
    log.info("fingerprint of %d checked marts: %s", len(tables), path)


def _run_stage(
    log: Any, work_db, stage: str, checks: Sequence[FrameCheck], ctx: CheckContext
) -> tuple[list[tuple[FrameCheck, CheckOutcome]], dict[str, dict[str, Any]] | None]:
    """The checks' outcomes and, for the mart stage, the fingerprint of the marts they read
    (taken before they run; None if it could not be: the publish step then runs the checks
    itself). In a child process on a large work DB (its memory is returned when it ends),
    in this process on a small one: see :func:`pipelines.quality.child.run_stage_checks`."""
    if not checks:
        return [], None
    relations = {c.relation for c in checks} if stage == MART_STAGE else None
    run = run_stage_checks(work_db, stage, checks, ctx, relations)
    if run.in_child:
        log.info(
            "%d %s checks ran in a child process (%s): %.1f s, peak RSS %.0f MB",
            len(checks),
            stage,
            run.why,
            run.seconds,
            run.max_rss_mb,
        )
        if run.stderr.strip():
            log.debug("the check process wrote: %s", run.stderr[-STDERR_TAIL:])
    else:
        log.info(
            "%d %s checks ran in this process (%s): %.1f s",
            len(checks),
            stage,
            run.why,
            run.seconds,
        )
    if relations and run.fingerprint is None:
        log.warning("could not fingerprint the marts: %s", run.fingerprint_error)
    return run.outcomes, run.fingerprint


def evaluate(
    context: dg.AssetCheckExecutionContext,
    work_db,
    checks: Sequence[tuple[FrameCheck, dg.AssetKey]],
    params: RunParameters,
    *,
    stage: str | None = None,
    settings: Settings | None = None,
) -> Iterable[dg.AssetCheckResult]:
    """Run the checks selected in this step, write their reports, yield one result each.

    ``settings`` defaults to the step's ``kam`` resource (else the environment); ``stage``
    names the report section (default ``marts`` for mart checks, else ``raw``).
    """
    selected = context.selected_asset_check_keys
    todo = [(check, key) for check, key in checks if dg.AssetCheckKey(key, check.name) in selected]
    settings = settings or _settings_of(context)
    ctx = check_context(settings, params)
    by_check = dict(todo)
    stage = stage or _default_stage(c for c, _ in todo)
    outcomes, tables = _run_stage(context.log, work_db, stage, [c for c, _ in todo], ctx)
    report = None
    if outcomes:
        report = write_run_reports(context.log, settings, context.run.run_id, stage, outcomes, ctx)
    if tables is not None:
        _record_fingerprint(context.log, settings, context.run.run_id, tables, outcomes)
    passed = sum(1 for _check, outcome in outcomes if outcome.success)
    if outcomes:
        context.log.info("%d of %d %s checks passed", passed, len(outcomes), stage)
    for check, outcome in outcomes:
        key = by_check[check]
        page = report.checks.get(check_name(check)) if report else None
        if outcome.success:
            context.log.debug("check passed: %s", outcome.summary())
        else:
            where = f" (report: {page.html})" if page else ""
            context.log.error("check FAILED: %s%s", outcome.summary(), where)
        yield check_result(check, key, outcome, page, report.index if report else None)


def quality_checks(
    name: str,
    checks: Sequence[tuple[FrameCheck, dg.AssetKey]],
    stage: str,
    description: str,
) -> dg.AssetChecksDefinition:
    """One blocking multi-asset check running ``checks`` (the selected ones) in a step."""

    @dg.multi_asset_check(
        name=name,
        specs=[check_spec(check, key) for check, key in checks],
        can_subset=True,
        description=description,
    )
    def _quality_checks(context: dg.AssetCheckExecutionContext, kam: KamResource):
        settings = kam.settings()
        params = run_parameters(context, settings)
        yield from evaluate(
            context, settings.work_db, checks, params, stage=stage, settings=settings
        )

    return _quality_checks
