"""Running the daily job for one as-of date and reading what went wrong from its events."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from kam_assets.cli.abandoned import fail_abandoned_runs, process_tags
from kam_assets.cli.environment import ensure_dagster_home, ensure_manifest, prepare_process_env
from pipelines.process_guard import guarded_children
from pipelines.run_params import RunParameters
from pipelines.settings import Settings, held_urls


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
    """Failed (or skipped) steps and failed checks of a finished run, from its events."""
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
        elif event.event_type_value == "STEP_SKIPPED":
            # Dagster calls a run with skipped steps a success (a step that did not yield
            # every output skips what depends on it, the publish included): not kam
            outcome.success = False
            outcome.failures.append(
                (
                    event.step_key or "?",
                    "skipped: a step before it did not produce one of its inputs "
                    "(the run's log names it)",
                )
            )
        elif event.event_type_value == "RUN_FAILURE" and not outcome.failures:
            data = event.event_specific_data
            error = getattr(data, "error", None)
            outcome.failures.append(("run", _error_text(error) if error else event.message or ""))
    return outcome


REPO = Path(__file__).resolve().parents[2]
#: the code location of workspace.yaml: a run recorded under it shows on the job's page
LOCATION_NAME = "kam"
DEFINITIONS_MODULE = "kam_assets.definitions"
#: run statuses that hold the work DB (or will, once the queue starts them)
HOLDING_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


class WorkDbBusy(RuntimeError):
    """Another run of the instance holds (or is queued to write) the work DB."""


def work_db_holder(instance) -> str | None:
    """The id of a run of this instance that holds the work DB, or None."""
    import dagster as dg

    from kam_assets.defs.jobs import WORK_DB_TAG

    runs = instance.get_runs(
        filters=dg.RunsFilter(
            tags={WORK_DB_TAG: "writer"},
            statuses=[dg.DagsterRunStatus[name] for name in HOLDING_STATUSES],
        ),
        limit=1,
    )
    return runs[0].run_id if runs else None


#: the `kam` command that made a run (run, demo, backfill): a tag on every run it records
COMMAND_TAG = "kam/command"


def run_tags(params: RunParameters, command: str) -> dict[str, str]:
    """The partition tags of a run of ``params``: its partition, and for a backfill
    (``rebuild_from`` set) the tag ``kam/rebuild_from`` on the partition ``as_of`` (the
    range in one run whose events in Dagster's storage are those of one partition, not of
    every day: kam_assets/partitions.py); and the command that made it."""
    from kam_assets.partitions import PARTITION_TAG, backfill_tags

    if params.rebuild_from is None:
        partition = {PARTITION_TAG: params.as_of.isoformat()}
    else:
        partition = backfill_tags(params.rebuild_from, params.as_of)
    return {**partition, COMMAND_TAG: command}


def _create_run(instance, location, settings: Settings, tags: dict[str, str]):
    """A run of kam_daily for the partition (or range), recorded with the code location's
    origin (so the UI lists it on the job's page) and the job's tags (the run queue's limit)."""
    from kam_assets.dagster_private import create_run_of_remote_job, reconstructable_job
    from kam_assets.defs.jobs import DAILY_JOB

    [repo_name] = location.get_repository_names()
    repo = location.get_repository(repo_name)
    remote_job = repo.get_full_job(DAILY_JOB)
    run_config = {"loggers": {"console": {"config": {"log_level": settings.log_level}}}}
    plan = location.get_execution_plan(
        remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=instance
    )
    tags = {**remote_job.tags, **process_tags(), **tags}
    run = create_run_of_remote_job(instance, repo, remote_job, plan, run_config, tags)
    recon_job = reconstructable_job(location, repo_name, DAILY_JOB)
    return run, recon_job


def finish_backfill(instance, backfill_id: str, success: bool) -> None:
    """The end state of a backfill an older `kam backfill` recorded (UI: Backfills), unless
    a daemon (or the UI) already changed it."""
    from kam_assets.dagster_private import BulkActionStatus, get_current_timestamp

    backfill = instance.get_backfill(backfill_id)
    if backfill is None or backfill.status != BulkActionStatus.REQUESTED:
        return
    status = BulkActionStatus.COMPLETED_SUCCESS if success else BulkActionStatus.COMPLETED_FAILED
    instance.update_backfill(
        backfill.with_status(status).with_end_timestamp(get_current_timestamp())
    )


def _finish_backfill_of(instance, run_id: str) -> None:
    """A backfill an older `kam backfill` recorded for an abandoned run ends as failed too."""
    from kam_assets.dagster_private import BACKFILL_ID_TAG

    run = instance.get_run_by_id(run_id)
    backfill_id = run.tags.get(BACKFILL_ID_TAG) if run is not None else None
    if backfill_id and run.tags.get(COMMAND_TAG) == "backfill":
        finish_backfill(instance, backfill_id, success=False)


def run_daily(params: RunParameters, settings: Settings, command: str = "run") -> RunOutcome:
    """Run kam_daily (see :func:`_run_daily`) with the source and warehouse URLs held out of
    the process environment: no child process (dbt, Dagster's helpers) gets one."""
    with held_urls():
        return _run_daily(params, settings, command)


def _run_daily(params: RunParameters, settings: Settings, command: str = "run") -> RunOutcome:
    """Run kam_daily for the partition ``params.as_of`` in this process, recorded in
    DAGSTER_HOME as a run of the code location (job page, timeline, run queue tags).

    With ``params.rebuild_from`` set it is a backfill of ``rebuild_from``..``as_of`` in one
    run: the partition ``as_of`` tagged ``kam/rebuild_from`` (:func:`run_tags`). It is not
    recorded as a Dagster backfill of the range (whose run Dagster tags with the range and
    records one event per asset and day: 745 MB for 730 days); the UI lists it under Runs,
    tag ``kam/command=backfill``.

    Raises :class:`WorkDbBusy` when another run holds the work DB (one writer at a time:
    the daemon's queue waits for this run by its tag; this refuses to wait for another).
    """
    import dagster as dg

    from kam_assets.dagster_private import (
        InProcessCodeLocationOrigin,
        LoadableTargetOrigin,
        execute_run,
    )
    from kam_assets.defs.jobs import DAILY_JOB

    ensure_dagster_home(settings)
    prepare_process_env(settings)
    ensure_manifest()
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=DEFINITIONS_MODULE,
            working_directory=str(REPO),
        ),
        location_name=LOCATION_NAME,
    )
    with dg.DagsterInstance.get() as instance:
        for run_id in fail_abandoned_runs(instance, DAILY_JOB):
            print(f"kam: run {run_id} was abandoned by a dead process: marked failed")
            _finish_backfill_of(instance, run_id)
        if holder := work_db_holder(instance):
            raise WorkDbBusy(
                f"run {holder} holds the work DB ({settings.work_db}); one run at a time "
                "writes it: wait for that run to finish (Dagster UI: kam dev) and run again"
            )
        with origin.create_location(instance) as location:
            run, recon_job = _create_run(instance, location, settings, run_tags(params, command))
        # a kill -9 of this process ends dbt and every other child too (issue 9)
        with guarded_children():
            result = execute_run(recon_job, run, instance)
    return outcome_of(result)


#: exit code of a run that failed before publishing: the warehouse is what it was
EXIT_FAILED = 1
#: exit code of a run that published the warehouse, then failed (the brief step)
EXIT_PUBLISHED_THEN_FAILED = 3


def failure_report(
    outcome: RunOutcome, published: tuple[date, str] | None, warehouse: str
) -> tuple[int, list[str]]:
    """The exit code and the lines saying what a failed run published and what failed.

    ``published`` is what the warehouse holds after the run ((as_of_date, run_id), or None
    for none); ``warehouse`` is its masked name. The run published when the warehouse holds
    its own run id (publishing is the one step that writes it, atomically).
    """
    if published is not None and published[1] == outcome.run_id:
        code = EXIT_PUBLISHED_THEN_FAILED
        head = (
            f"kam: run {outcome.run_id} published the warehouse {warehouse} (as-of "
            f"{published[0]}), then FAILED in a later step: the marts are current, "
            "what failed is below"
        )
    else:
        code = EXIT_FAILED
        if published is None:
            held = "holds nothing published"
        else:
            held = f"still holds as-of {published[0]} (run {published[1]})"
        head = (
            f"kam: run {outcome.run_id} FAILED, nothing published: the warehouse {warehouse} {held}"
        )
    lines = ["", head]
    for step, message in outcome.failures:
        lines.append(f"failed step: {step}\nerror: {message}")
    for check in outcome.failed_checks:
        lines.append(f"failed check: {check}")
    return code, lines


def report_failure(outcome: RunOutcome, published: tuple[date, str] | None, warehouse: str) -> int:
    """Print :func:`failure_report` to stderr; its exit code."""
    code, lines = failure_report(outcome, published, warehouse)
    print("\n".join(lines), file=sys.stderr)
    return code
