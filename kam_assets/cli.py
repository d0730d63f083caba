"""`kam`: the command line of the KAM pipeline.

    kam demo                    generate demo sources (if absent), run the daily job, show where
    kam run --as-of YYYY-MM-DD  run the daily job for one as-of date (KAM_ERP_URL, KAM_CRM_URL)
    kam generate --out DIR ...  write demo ERP/CRM sources
    kam bench ...               benchmarks (pipelines.benchmark)

Runs go through Dagster with the persistent instance (DAGSTER_HOME; default
$KAM_DATA_DIR/dagster_home), so they show in the UI (`dagster dev -w workspace.yaml`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from pipelines.settings import Settings

DAGSTER_YAML = """\
# Written by `kam`: one run at a time writes the work DB (runs of kam_daily carry this tag).
concurrency:
  runs:
    tag_concurrency_limits:
      - key: "kam/work_db"
        limit: 1
telemetry:
  enabled: false
"""


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    failures: list[tuple[str, str]] = field(default_factory=list)  # (step, message)
    failed_checks: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- environment


def ensure_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME as set, else $KAM_DATA_DIR/dagster_home; created with a dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir / "dagster_home")
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _prepare_process_env(settings: Settings) -> None:
    """dbt needs KAM_WORK_DB (profile) and the venv's executables on PATH."""
    # dbt must write the same work DB the raw loader fills: never inherit another one
    os.environ["KAM_WORK_DB"] = str(settings.work_db)
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _newest_dbt_source_mtime(project_dir: Path) -> float:
    """Latest modification time of the files a dbt parse reads."""
    newest = (project_dir / "dbt_project.yml").stat().st_mtime
    for folder in ("models", "seeds", "macros"):
        for path in (project_dir / folder).rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    return newest


def ensure_manifest() -> None:
    """Parse the dbt project if its manifest is missing or older than the project's files.

    Never done at import; a stale manifest would give Dagster an outdated asset graph.
    """
    from kam_assets.dbt_project import dbt_project

    manifest = dbt_project.manifest_path
    if not manifest.exists():
        print(f"dbt manifest missing; parsing the dbt project into {manifest}")
    elif manifest.stat().st_mtime < _newest_dbt_source_mtime(Path(dbt_project.project_dir)):
        print(f"dbt project changed since {manifest} was written; parsing it again")
    else:
        return
    dbt_project.preparer.prepare(dbt_project)


# --------------------------------------------------------------------------- running


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


PID_TAG = "kam/pid"
HOST_TAG = "kam/host"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def fail_abandoned_runs(instance, job_name: str) -> list[str]:
    """Mark FAILED the runs of ``job_name`` left STARTED by a `kam run` process that died
    (killed, machine restarted): same host, its pid no longer alive. Returns their ids.

    An in-process run has no run monitor: without this, a killed run stays "started" in
    the Dagster UI forever. A pid reused by another process keeps the run as it is.
    """
    import dagster as dg

    host = socket.gethostname()
    found = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=job_name,
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
        )
    )
    for run in runs:
        pid = run.tags.get(PID_TAG, "")
        if run.tags.get(HOST_TAG) != host or not pid.isdigit() or _process_alive(int(pid)):
            continue
        instance.report_run_failed(
            run,
            f"the kam process (pid {pid} on {host}) ended without finishing this run "
            "(killed or crashed); marked failed by the next kam run",
        )
        found.append(run.run_id)
    return found


def run_daily(as_of: str, settings: Settings | None = None) -> RunOutcome:
    """Run kam_daily for the partition ``as_of`` in process, recorded in DAGSTER_HOME."""
    import dagster as dg

    from kam_assets.defs.jobs import DAILY_JOB

    settings = settings or Settings.from_env()
    ensure_dagster_home(settings)
    _prepare_process_env(settings)
    ensure_manifest()
    from kam_assets.definitions import build_defs

    job = build_defs().resolve_job_def(DAILY_JOB)
    with dg.DagsterInstance.get() as instance:
        for run_id in fail_abandoned_runs(instance, DAILY_JOB):
            print(f"kam: run {run_id} was abandoned by a dead process: marked failed")
        result = job.execute_in_process(
            partition_key=as_of,
            instance=instance,
            raise_on_error=False,
            tags={PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
            # step starts, check results and failures; DEBUG adds every engine event
            run_config={"loggers": {"console": {"config": {"log_level": settings.log_level}}}},
        )
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


def _report_failure(outcome: RunOutcome) -> None:
    print(f"\nkam: run {outcome.run_id} FAILED", file=sys.stderr)
    for step, message in outcome.failures:
        print(f"failed step: {step}\nerror: {message}", file=sys.stderr)
    for check in outcome.failed_checks:
        print(f"failed check: {check}", file=sys.stderr)


def _valid_date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from exc


# --------------------------------------------------------------------------- commands


def _settings_error(settings: Settings) -> str | None:
    """A setting that would only fail at publish time, checked before any work is done."""
    from kam_assets.defs.publish.assets import validate_publish_settings

    try:
        validate_publish_settings(settings)
    except ValueError as exc:
        return str(exc)
    return None


def _as_of_error(as_of: str, settings: Settings) -> str | None:
    """Why ``as_of`` is not a partition of the daily job, or None."""
    from zoneinfo import ZoneInfo

    day = date.fromisoformat(as_of)
    start = date.fromisoformat(settings.partitions_start)
    if day < start:
        return (
            f"as-of {as_of} is before the first daily partition, KAM_PARTITIONS_START="
            f"{settings.partitions_start}; set KAM_PARTITIONS_START to {as_of} or earlier "
            "to run it (the history before the as-of date is read whatever this setting)"
        )
    today = datetime.now(ZoneInfo(settings.schedule_timezone)).date()
    if day >= today:
        return (
            f"as-of {as_of} is not a complete day yet: the last complete day in "
            f"KAM_SCHEDULE_TIMEZONE={settings.schedule_timezone} is "
            f"{(today - timedelta(days=1)).isoformat()}"
        )
    return None


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.erp_url:
        print("kam run: KAM_ERP_URL is not set (the ERP source is required)", file=sys.stderr)
        return 2
    if error := _settings_error(settings) or _as_of_error(args.as_of, settings):
        print(f"kam run: {error}", file=sys.stderr)
        return 2
    outcome = run_daily(args.as_of, settings)
    if not outcome.success:
        _report_failure(outcome)
        return 1
    print(f"\nkam: run {outcome.run_id} succeeded for as-of {args.as_of}")
    print(f"warehouse: {settings.warehouse}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.generator import generate_demo

    kwargs = {"clients": args.clients, "years": args.years, "seed": args.seed}
    if args.end_date:
        kwargs["end_date"] = date.fromisoformat(args.end_date)
    record = generate_demo(Path(args.out), **kwargs)
    print(f"demo sources written to {Path(args.out).resolve()} (end date {record['end_date']})")
    for table, rows in (record.get("row_counts") or {}).items():
        print(f"  {table:<14} {rows:>10,}")
    return 0


def _mart_counts(warehouse: str) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(warehouse, read_only=True)
    try:
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "order by table_name"
        ).fetchall()
        return {
            name: con.execute(f'select count(*) from marts."{name}"').fetchall()[0][0]
            for (name,) in tables
        }
    finally:
        con.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.generator import generate_demo

    settings = Settings.from_env()
    demo_dir = settings.demo_dir
    erp_file, crm_file, planted = (
        demo_dir / "erp.sqlite",
        demo_dir / "crm.sqlite",
        demo_dir / "planted.json",
    )
    if not (erp_file.exists() and crm_file.exists() and planted.exists()):
        print(f"generating demo sources in {demo_dir} ...")
        record = generate_demo(demo_dir)
    else:
        print(f"using the demo sources in {demo_dir}")
        record = json.loads(planted.read_text())
    os.environ.setdefault("KAM_ERP_URL", f"sqlite:///{erp_file}")
    os.environ.setdefault("KAM_CRM_URL", f"sqlite:///{crm_file}")
    settings = Settings.from_env()
    if error := _settings_error(settings):
        print(f"kam demo: {error}", file=sys.stderr)
        return 2
    as_of = str(record["end_date"])
    outcome = run_daily(as_of, settings)
    if not outcome.success:
        _report_failure(outcome)
        return 1
    home = os.environ["DAGSTER_HOME"]
    warehouse = settings.warehouse
    print(f"\nThe KAM warehouse is ready (as-of {as_of}): {warehouse}")
    if not warehouse.startswith("postgres"):
        print("\nPublished marts (rows):")
        for name, rows in _mart_counts(warehouse).items():
            print(f"  marts.{name:<24} {rows:>10,}")
    print(
        "\nDagster UI (run history, asset graph, checks):\n"
        f"  DAGSTER_HOME={home} dagster dev -w workspace.yaml\n"
        "\nBI tools: open the DuckDB file read-only, schema 'marts'\n"
        f'  duckdb -readonly {warehouse} "select * from marts.kam_actions limit 20"\n'
        f"  DBeaver: New connection > DuckDB > Path: {warehouse} (read-only)\n"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        from pipelines import benchmark
    except ImportError:
        print("kam bench: pipelines.benchmark is not available", file=sys.stderr)
        return 2
    return int(benchmark.main(args.bench_args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kam", description="KAM analytics pipeline")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("demo", help="generate demo sources, run the pipeline, show the warehouse")

    run = sub.add_parser("run", help="run the daily job for one as-of date")
    run.add_argument("--as-of", required=True, type=_valid_date, help="YYYY-MM-DD")

    gen = sub.add_parser("generate", help="write demo ERP/CRM sources")
    gen.add_argument("--out", required=True, help="output folder")
    gen.add_argument("--clients", type=int, default=600)
    gen.add_argument("--years", type=int, default=3)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--end-date", type=_valid_date, default=None)

    bench = sub.add_parser("bench", help="benchmarks (arguments passed to pipelines.benchmark)")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    return parser


COMMANDS = {"demo": cmd_demo, "run": cmd_run, "generate": cmd_generate, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
