"""The `kam` commands: demo, run, backfill, generate, bench, evaluate, brief."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from datetime import date, timedelta
from pathlib import Path

from kam_assets.cli.data_dir import (
    command_line,
    make_record,
    mismatch,
    read_record,
    remember_first_order_month,
    reuse_recorded_sources,
    write_record,
)
from kam_assets.cli.preflight import (
    crm_gone_problems,
    load_settings,
    published_as_of,
    run_problems,
    source_problems,
    storage_problems,
    warehouse_problems,
)
from kam_assets.cli.runner import RunOutcome, WorkDbBusy, report_failure, run_daily
from pipelines.run_params import RunParameters
from pipelines.secrets import mask_url
from pipelines.settings import Settings


def _refuse(command: str, problems: list[str]) -> int:
    """Print why the command cannot start (nothing was recorded or written) and exit 2."""
    if len(problems) == 1:
        print(f"kam {command}: {problems[0]}", file=sys.stderr)
    else:
        print(f"kam {command}: {len(problems)} problems, nothing was started:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    return 2


def _load(command: str, *, quiet: bool = False) -> Settings | int:
    """The settings with the data dir's memory applied: its recorded sources reused when
    KAM_ERP_URL is unset (said in the command's first line), other sources refused in one
    line. The exit code of a refusal otherwise."""
    settings, problems = load_settings()
    if settings is None:
        return _refuse(command, problems)
    reused = reuse_recorded_sources(settings)
    if reused is not None or os.environ.get("KAM_PARTITIONS_START"):
        settings, problems = load_settings()  # the recorded sources / first partition
        if settings is None:
            return _refuse(command, problems)
    if reused is not None and not quiet:
        print(
            f"kam {command}: using the sources KAM_DATA_DIR={settings.data_dir} was built "
            f"from ({reused.describe()}); set KAM_ERP_URL for others"
        )
    record = read_record(settings.data_dir)
    if record is not None and settings.erp_url and (problem := mismatch(settings, record)):
        return _refuse(command, [problem])
    return settings


def _remember_sources(settings: Settings, command: str) -> None:
    """The first run (or check) of a data dir records its sources; a data dir built before
    the record existed adopts the sources it is run with."""
    if settings.erp_url and read_record(settings.data_dir) is None:
        start = os.environ.get("KAM_PARTITIONS_START", "").strip() or None
        write_record(settings.data_dir, make_record(settings, command, start))


def _start(
    command: str, as_of: date | None, first: date | None = None, allow_older: bool = False
) -> tuple[Settings, RunParameters] | int:
    """Settings and run parameters (a backfill of ``first``..``as_of`` when ``first`` is
    given), or the exit code of a refused start."""
    settings = _load(command)
    if isinstance(settings, int):
        return settings
    as_of = as_of or date.today()
    if first is not None and first > as_of:
        return _refuse(
            command,
            [f"--from {first} is after --to {as_of}: the range's first date comes first"],
        )
    params = RunParameters.derive(as_of, settings, rebuild_from=first)
    if problems := run_problems(settings, params, allow_older=allow_older):
        return _refuse(command, [_name_the_recorded_erp(settings, p) for p in problems])
    _remember_sources(settings, command)
    return settings, params


def _name_the_recorded_erp(settings: Settings, problem: str) -> str:
    """ "KAM_ERP_URL is not set", completed with the source the data dir was built from
    when it cannot be reused (it holds a credential, which is never written to disk)."""
    record = read_record(settings.data_dir)
    if problem.startswith("KAM_ERP_URL is not set") and record is not None:
        return (
            f"KAM_ERP_URL is not set: KAM_DATA_DIR={settings.data_dir} was built from "
            f"{record.describe()}; set KAM_ERP_URL (and KAM_CRM_URL) to them"
        )
    return problem


def _start_and_run(
    command: str, as_of: date, first: date | None = None, allow_older: bool = False
) -> tuple[Settings, RunParameters, RunOutcome] | int:
    """The preflight, then the run; the exit code when it was refused or failed."""
    started = _start(command, as_of, first, allow_older)
    if isinstance(started, int):
        return started
    settings, params = started
    try:
        outcome = run_daily(params, settings, command)
    except WorkDbBusy as exc:
        return _refuse(command, [str(exc)])
    if not outcome.success:
        # what the warehouse holds now says whether this run published before it failed
        return report_failure(outcome, published_as_of(settings), mask_url(settings.warehouse))
    if start := remember_first_order_month(settings):
        print(
            f"kam {command}: the data's first order month {start} is now this data dir's "
            "first partition (the UI of `kam dev`; set KAM_PARTITIONS_START to choose another)"
        )
    return settings, params, outcome


def cmd_run(args: argparse.Namespace) -> int:
    done = _start_and_run("run", args.as_of, allow_older=args.allow_older)
    if isinstance(done, int):
        return done
    settings, params, outcome = done
    print(f"\nkam: run {outcome.run_id} succeeded for as-of {params.as_of}")
    print(f"warehouse: {mask_url(settings.warehouse)}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """One run for the range --from D1 --to D2: marts as of D2, history rebuilt from D1."""
    done = _start_and_run("backfill", args.to_date, args.from_date, args.allow_older)
    if isinstance(done, int):
        return done
    settings, params, outcome = done
    days = (params.as_of - params.rebuild_from).days + 1
    print(
        f"\nkam: backfill run {outcome.run_id} succeeded for {params.rebuild_from}..{params.as_of} "
        f"({days} days in one run: client_status_history rebuilt from {params.rebuild_from}, "
        f"marts as of {params.as_of})"
    )
    print(f"warehouse: {mask_url(settings.warehouse)} (as of {params.as_of})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """The preflight alone: settings, folders, sources and their contract; a short report."""
    settings = _load("check")
    if isinstance(settings, int):
        return settings
    problems: list[str] = []
    print("settings: ok")
    checks = [
        ("folders", storage_problems(settings)),
        ("warehouse", warehouse_problems(settings)),
        ("sources", source_problems(settings) + crm_gone_problems(settings)),
    ]
    if not settings.erp_url:
        missing = "KAM_ERP_URL is not set (the ERP source is required)"
        checks.insert(0, ("erp", [_name_the_recorded_erp(settings, missing)]))
    for name, found in checks:
        print(f"{name}: {'ok' if not found else f'{len(found)} problem(s)'}")
        for problem in found:
            print(f"  {problem}")
        problems.extend(found)
    if not problems:
        crm = mask_url(settings.crm_url) if settings.crm_url else "not configured (orders only)"
        print(
            f"ready: ERP {mask_url(settings.erp_url)}, CRM {crm}, "
            f"warehouse {mask_url(settings.warehouse)}"
        )
    return 2 if problems else 0


#: kam generate's arguments: (least, most, why)
GENERATE_BOUNDS = {
    "clients": (60, 1_000_000, "the planted behaviours need at least 60 clients"),
    "years": (2, 30, "the planted behaviours need a year of baseline before the last year"),
    "seed": (0, 2**32 - 1, "a random seed"),
}


def generate_problems(args: argparse.Namespace) -> list[str]:
    """kam generate's arguments out of range, one line each naming the argument."""
    problems = []
    for name, (least, most, why) in GENERATE_BOUNDS.items():
        value = getattr(args, name)
        if not least <= value <= most:
            problems.append(f"--{name} {value}: must be from {least:,} to {most:,} ({why})")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        problems.append(f"--out {out}: is a file, not a folder")
    return problems


def cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.generator import generate_demo

    if problems := generate_problems(args):
        return _refuse("generate", problems)
    kwargs = {"clients": args.clients, "years": args.years, "seed": args.seed}
    if args.end_date:
        kwargs["end_date"] = args.end_date
    try:
        record = generate_demo(Path(args.out), **kwargs)
    except (ValueError, OSError) as exc:  # a combination the generator cannot plant
        return _refuse("generate", [str(exc)])
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


def _order_date_range(erp_file: Path) -> tuple[date, date] | None:
    """The first and last order date of the demo ERP (SQLite), any status."""
    import sqlite3

    con = sqlite3.connect(f"file:{erp_file}?mode=ro", uri=True)
    try:
        first, last = con.execute("select min(order_date), max(order_date) from orders").fetchone()
    finally:
        con.close()
    if first is None:
        return None
    return date.fromisoformat(str(first)[:10]), date.fromisoformat(str(last)[:10])


#: the horizon of the demo's suggested backtest (a quarter: the demo's clients order
#: every few weeks, so a quarter without an order means something)
DEMO_HORIZON_DAYS = 91


def demo_next_steps(
    as_of: date, last_order: date, warehouse: str, is_postgres: bool
) -> list[tuple[str, str]]:
    """(what, command line) the demo summary prints, each runnable as printed."""
    judged = min(as_of, last_order) - timedelta(days=DEMO_HORIZON_DAYS)
    evaluate = command_line(
        "evaluate", "--as-of", judged.isoformat(), "--horizon-days", str(DEMO_HORIZON_DAYS)
    )
    week = as_of - timedelta(days=6)
    steps = [
        ("check the sources and folders (starts nothing)", command_line("check")),
        (
            f"how often the churn flags were right: publish {judged} on purpose (older than "
            f"{as_of}: --allow-older; the last date whose "
            f"{DEMO_HORIZON_DAYS}-day horizon has passed), then judge it",
            f"{command_line('run', '--as-of', judged.isoformat(), '--allow-older')} && {evaluate}",
        ),
        (
            f"rebuild the last week in one run (publishes {as_of} again)",
            command_line("backfill", "--from", week.isoformat(), "--to", as_of.isoformat()),
        ),
        (
            "the Dagster UI (run history, asset graph, checks), on the same instance",
            command_line("dev"),
        ),
    ]
    if not is_postgres:
        query = (
            f"import duckdb; print(duckdb.connect({warehouse!r}, read_only=True)"
            ".sql('select manager_name, manager_rank, client_name, reason "
            "from marts.kam_actions order by manager_name, manager_rank limit 10'))"
        )
        steps.append(
            (
                "a BI tool: open the DuckDB file read-only, schema 'marts' (DBeaver: New "
                f"connection > DuckDB > Path: {warehouse}); from Python",
                f"{shlex.quote(sys.executable)} -c "
                + (f'"{query}"' if not set('"$`\\') & set(query) else shlex.quote(query)),
            )
        )
    return steps


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.generator import generate_demo

    settings, problems = load_settings()
    if settings is None:
        return _refuse("demo", problems)
    demo_dir = settings.demo_dir
    erp_file, crm_file, planted = (
        demo_dir / "erp.sqlite",
        demo_dir / "crm.sqlite",
        demo_dir / "planted.json",
    )
    os.environ.setdefault("KAM_ERP_URL", f"sqlite:///{erp_file}")
    os.environ.setdefault("KAM_CRM_URL", f"sqlite:///{crm_file}")
    settings = _load("demo", quiet=True)  # another source's data dir: refused, nothing written
    if isinstance(settings, int):
        return settings
    if not (erp_file.exists() and crm_file.exists() and planted.exists()):
        print(f"generating demo sources in {demo_dir} ...")
        record = generate_demo(demo_dir)
    else:
        print(f"using the demo sources in {demo_dir}")
        record = json.loads(planted.read_text())
    as_of = date.fromisoformat(str(record["end_date"]))
    orders = _order_date_range(erp_file) or (as_of, as_of)
    if settings.erp_url == f"sqlite:///{erp_file}":
        # the UI's partitions begin with the demo's data, so its "missing" counts mean something
        os.environ.setdefault("KAM_PARTITIONS_START", orders[0].replace(day=1).isoformat())
    done = _start_and_run("demo", as_of)
    if isinstance(done, int):
        return done
    settings, params, outcome = done
    warehouse = settings.warehouse
    print(f"\nThe KAM warehouse is ready (as-of {params.as_of}): {mask_url(warehouse)}")
    if not settings.warehouse_is_postgres:
        print("\nPublished marts (rows):")
        for name, rows in _mart_counts(warehouse).items():
            print(f"  marts.{name:<24} {rows:>10,}")
    index = settings.briefs_dir / params.as_of.isoformat() / "index.html"
    if index.is_file():
        print(
            f"\nThe managers' daily brief (one page each, opens offline): {index}\n"
            f"  rebuild it: {command_line('brief')}"
        )
    print(
        f"\nNext steps: this data dir ({settings.data_dir}) remembers the demo's sources, so "
        "these commands use them (run from any folder):"
    )
    for what, line in demo_next_steps(
        params.as_of, orders[1], mask_url(warehouse), settings.warehouse_is_postgres
    ):
        print(f"\n# {what}\n  {line}")
    print(
        "\nAnother source (your ERP, Online Retail): give it its own KAM_DATA_DIR (README, "
        "'Running it on your own data')."
    )
    return 0


REPO = Path(__file__).resolve().parents[2]


DEFAULT_UI_PORT = 3000


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cmd_dev(args: argparse.Namespace) -> int:
    """The Dagster UI and daemon on the instance `kam run` records into (DAGSTER_HOME)."""
    from kam_assets.cli.environment import (
        ensure_dagster_home,
        ensure_manifest,
        prepare_process_env,
    )

    settings = _load("dev")  # the recorded first partition reaches the code server's env
    if isinstance(settings, int):
        return settings
    home = ensure_dagster_home(settings)
    prepare_process_env(settings)
    ensure_manifest()
    port = args.port
    if port is None:  # the default port, or a free one when another UI holds it
        port = DEFAULT_UI_PORT if _port_is_free(DEFAULT_UI_PORT) else _free_port()
        if port != DEFAULT_UI_PORT:
            print(f"port {DEFAULT_UI_PORT} is in use (another UI?): using {port}")
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-p", str(port)]
    print(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={home}); Ctrl-C stops it")
    sys.stdout.flush()
    os.chdir(REPO)
    # A shell starting a command in the background without job control (`kam dev &` in a
    # script, with or without setsid / nohup) ignores SIGINT in it, and an ignored signal
    # stays ignored across exec. `dagster dev` gives SIGTERM SIGINT's handling
    # (setup_interrupt_handlers in dagster/_utils/interrupts.py), so it then ignored SIGTERM:
    # a service manager's stop left dagster dev, webserver, daemon and code servers running
    # until SIGKILL. With SIGINT's default restored both stop it as Ctrl-C does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(command[0], command)
    return 0  # not reached


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        from pipelines.benchmark import cli as benchmark
    except ImportError:
        print("kam bench: pipelines.benchmark is not available", file=sys.stderr)
        return 2
    return int(benchmark.main(args.bench_args) or 0)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """The flags of the warehouse's as-of date against the orders after it (backtest)."""
    from pipelines.evaluate import (
        EvaluateError,
        HorizonNotPassed,
        evaluate,
        format_evaluation,
        format_json,
    )

    settings = _load("evaluate", quiet=True)
    if isinstance(settings, int):
        return settings
    try:
        result = evaluate(
            settings.warehouse,
            settings.work_db,
            args.as_of,
            args.horizon_days,
            partial=args.partial,
        )
    except HorizonNotPassed as exc:
        return _refuse("evaluate", [_horizon_refusal(exc)])
    except EvaluateError as exc:
        return _refuse("evaluate", [str(exc)])
    if args.json:
        print(format_json(result))
    else:
        shown = mask_url(settings.warehouse)
        print(f"kam evaluate: warehouse {shown} (run {result.warehouse_run_id})")
        print(format_evaluation(result))
    return 0


def _horizon_refusal(exc: Exception) -> str:
    """The refusal of a horizon not passed, with the commands that judge the latest date
    the data can judge (runnable as printed), or the partial judgement."""
    from pipelines.evaluate import HorizonNotPassed

    assert isinstance(exc, HorizonNotPassed)
    horizon = str(exc.horizon_days)
    partial = command_line(
        "evaluate", "--as-of", exc.as_of.isoformat(), "--horizon-days", horizon, "--partial"
    )
    if exc.latest_judgeable is None:
        return f"{exc}; a partial judgement ('lost' overstated): {partial}"
    day = exc.latest_judgeable.isoformat()
    judge = command_line("evaluate", "--as-of", day, "--horizon-days", horizon)
    return (
        # the warehouse holds the later D: publishing the older date is on purpose
        f"{exc}; judge it with: {command_line('run', '--as-of', day, '--allow-older')} "
        f"&& {judge} "
        f"(or a partial judgement, 'lost' overstated: {partial})"
    )


def cmd_reset(args: argparse.Namespace) -> int:
    """Archive the data dir's state (work DB, warehouse, instance, reports, sources record)
    so that it can be built from other sources; nothing is deleted."""
    from kam_assets.cli.data_dir import STATE_ENTRIES, archive_state

    settings, problems = load_settings()
    if settings is None:
        return _refuse("reset", problems)
    if settings.work_db.exists():
        import duckdb

        try:  # a run writing the work DB holds its lock: never move its files under it
            duckdb.connect(str(settings.work_db)).close()
        except duckdb.Error as exc:
            return _refuse("reset", [f"the work DB {settings.work_db} is in use: {exc}"])
    target, moved = archive_state(settings)
    if not moved:
        print(
            f"kam reset: KAM_DATA_DIR={settings.data_dir} holds no state "
            f"({', '.join(STATE_ENTRIES)}): nothing to archive"
        )
        return 0
    print(
        f"kam reset: archived {', '.join(moved)} of KAM_DATA_DIR={settings.data_dir} into "
        f"{target}; the next run builds it from the sources it is given"
    )
    if not settings.warehouse_is_postgres and not Path(settings.warehouse).is_relative_to(
        settings.data_dir
    ):
        print(f"  the warehouse {settings.warehouse} is outside the data dir: left as it is")
    return 0


def cmd_brief(args: argparse.Namespace) -> int:
    """The daily brief of the published warehouse (as kam run's brief step writes it)."""
    from pipelines.brief.build import build_briefs
    from pipelines.brief.render import counted
    from pipelines.brief.warehouse import BriefError

    settings, problems = load_settings()
    if settings is None:
        return _refuse("brief", problems)
    try:
        result = build_briefs(
            settings.warehouse,
            settings.briefs_dir,
            as_of=args.as_of,
            manager=args.manager,
            retention_days=settings.report_retention_days,
        )
    except BriefError as exc:
        return _refuse("brief", [str(exc)])
    print(
        f"kam brief: {counted(len(result.managers), 'manager page')} and the index for "
        f"{result.as_of} in {result.folder} ({result.bytes / 1024:.0f} kB, {result.seconds:.1f} s)"
    )
    print(f"  open {result.index}")
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "run": cmd_run,
    "backfill": cmd_backfill,
    "generate": cmd_generate,
    "bench": cmd_bench,
    "dev": cmd_dev,
    "check": cmd_check,
    "brief": cmd_brief,
    "evaluate": cmd_evaluate,
    "reset": cmd_reset,
}
