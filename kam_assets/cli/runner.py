"""Running the daily job for one as-of date and reading what went wrong from its events."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from kam_assets.cli.abandoned import fail_abandoned_runs, process_tags
from kam_assets.cli.environment import ensure_dagster_home, ensure_manifest, prepare_process_env
from pipelines.run_params import RunParameters
from pipelines.settings import Settings


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    failures: list[tuple[str, str]] = field(default_factory=list)  # (step, message)
    failed_checks: list[str] = field(default_factory=list)


def _error_text(error) -> str:
    """The error message with its causes (the root cause names what went wrong)."""
    parts = []
    seen = 0
    while error is not None and seen < 10:
        message = (error.message or "").strip()
        if message:
            parts.append(message)
        error = error.cause or getattr(error, "context", None)
        seen += 1
    return "\n  caused by: ".join(parts)


def outcome_of(result) -> RunOutcome:
    """Failed steps and failed checks of a finished run, from its events."""
    outcome = RunOutcome(success=result.success, run_id=result.run_id)
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            outcome.failures.append((event.step_key or "?", _error_text(error)))
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                summary = evaluation.metadata.get("summary")
                text = getattr(summary, "value", None) or evaluation.check_name
                outcome.failed_checks.append(
                    f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}: {text}"
                )
        elif event.event_type_value == "RUN_FAILURE" and not outcome.failures:
            data = event.event_specific_data
            error = getattr(data, "error", None)
            outcome.failures.append(("run", _error_text(error) if error else event.message or ""))
    return outcome


def run_daily(params: RunParameters, settings: Settings) -> RunOutcome:
    """Run kam_daily for the partition ``params.as_of``, recorded in DAGSTER_HOME."""
    import dagster as dg

    from kam_assets.defs.jobs import DAILY_JOB

    ensure_dagster_home(settings)
    prepare_process_env(settings)
    ensure_manifest()
    from kam_assets.definitions import build_defs

    job = build_defs().resolve_job_def(DAILY_JOB)
    with dg.DagsterInstance.get() as instance:
        for run_id in fail_abandoned_runs(instance, DAILY_JOB):
            print(f"kam: run {run_id} was abandoned by a dead process: marked failed")
        result = job.execute_in_process(
            partition_key=params.as_of.isoformat(),
            instance=instance,
            raise_on_error=False,
            tags=process_tags(),
            # step starts, check results and failures; DEBUG adds every engine event
            run_config={"loggers": {"console": {"config": {"log_level": settings.log_level}}}},
        )
    return outcome_of(result)


def report_failure(outcome: RunOutcome) -> None:
    print(f"\nkam: run {outcome.run_id} FAILED", file=sys.stderr)
    for step, message in outcome.failures:
        print(f"failed step: {step}\nerror: {message}", file=sys.stderr)
    for check in outcome.failed_checks:
        print(f"failed check: {check}", file=sys.stderr)
