"""The `kam` commands: demo, run, backfill, generate, bench, evaluate."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from kam_assets.cli.preflight import (
    load_settings,
    run_problems,
    source_problems,
    storage_problems,
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


def _start(
    command: str, as_of: date | None, first: date | None = None
) -> tuple[Settings, RunParameters] | int:
    """Settings and run parameters (a backfill of ``first``..``as_of`` when ``first`` is
    given), or the exit code of a refused start."""
    settings, problems = load_settings()
    if settings is None:
        return _refuse(command, problems)
    as_of = as_of or date.today()
    if first is not None and first > as_of:
        return _refuse(
            command,
            [f"--from {first} is after --to {as_of}: the range's first date comes first"],
        )
    params = RunParameters.derive(as_of, settings, rebuild_from=first)
    if problems := run_problems(settings, params):
        return _refuse(command, problems)
    return settings, params


def _start_and_run(
    command: str, as_of: date, first: date | None = None
) -> tuple[Settings, RunParameters, RunOutcome] | int:
    """The preflight, then the run; the exit code when it was refused or failed."""
    started = _start(command, as_of, first)
    if isinstance(started, int):
        return started
    settings, params = started
    try:
        outcome = run_daily(params, settings, command)
    except WorkDbBusy as exc:
        return _refuse(command, [str(exc)])
    if not outcome.success:
        report_failure(outcome)
        return 1
    return settings, params, outcome


def cmd_run(args: argparse.Namespace) -> int:
    done = _start_and_run("run", args.as_of)
    if isinstance(done, int):
        return done
    settings, params, outcome = done
    print(f"\nkam: run {outcome.run_id} succeeded for as-of {params.as_of}")
    print(f"warehouse: {mask_url(settings.warehouse)}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """One run for the range --from D1 --to D2: marts as of D2, history rebuilt from D1."""
    done = _start_and_run("backfill", args.to_date, args.from_date)
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
    settings, problems = load_settings()
    print(f"settings: {'ok' if settings else f'{len(problems)} invalid'}")
    if settings is None:
        return _refuse("check", problems)
    checks = [("folders", storage_problems(settings)), ("sources", source_problems(settings))]
    if not settings.erp_url:
        checks.insert(0, ("erp", ["KAM_ERP_URL is not set (the ERP source is required)"]))
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


def cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.generator import generate_demo

    kwargs = {"clients": args.clients, "years": args.years, "seed": args.seed}
    if args.end_date:
        kwargs["end_date"] = args.end_date
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

    settings, problems = load_settings()
    if settings is None:
        return _refuse("demo", problems)
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
    done = _start_and_run("demo", date.fromisoformat(str(record["end_date"])))
    if isinstance(done, int):
        return done
    settings, params, outcome = done
    warehouse = settings.warehouse
    print(f"\nThe KAM warehouse is ready (as-of {params.as_of}): {mask_url(warehouse)}")
    if not settings.warehouse_is_postgres:
        print("\nPublished marts (rows):")
        for name, rows in _mart_counts(warehouse).items():
            print(f"  marts.{name:<24} {rows:>10,}")
    print(
        "\nDagster UI (run history, asset graph, checks), on the same instance:\n"
        f"  {Path(sys.executable).with_name('kam')} dev\n"
        "\nBI tools: open the DuckDB file read-only, schema 'marts'\n"
        f'  {Path(sys.executable)} -c "import duckdb; '
        f"print(duckdb.connect('{mask_url(warehouse)}', read_only=True)"
        f".sql('select * from marts.kam_actions limit 20'))\"\n"
        f"  DBeaver: New connection > DuckDB > Path: {mask_url(warehouse)} (read-only)\n"
    )
    return 0


REPO = Path(__file__).resolve().parents[2]


def cmd_dev(args: argparse.Namespace) -> int:
    """The Dagster UI and daemon on the instance `kam run` records into (DAGSTER_HOME)."""
    from kam_assets.cli.environment import (
        ensure_dagster_home,
        ensure_manifest,
        prepare_process_env,
    )

    settings, problems = load_settings()
    if settings is None:
        return _refuse("dev", problems)
    home = ensure_dagster_home(settings)
    prepare_process_env(settings)
    ensure_manifest()
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-p", str(args.port)]
    print(f"Dagster UI on http://127.0.0.1:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops it")
    sys.stdout.flush()
    os.chdir(REPO)
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
    from pipelines.evaluate import EvaluateError, evaluate, format_evaluation, format_json

    settings, problems = load_settings()
    if settings is None:
        return _refuse("evaluate", problems)
    try:
        result = evaluate(settings.warehouse, settings.work_db, args.as_of, args.horizon_days)
    except EvaluateError as exc:
        return _refuse("evaluate", [str(exc)])
    if args.json:
        print(format_json(result))
    else:
        shown = mask_url(settings.warehouse)
        print(f"kam evaluate: warehouse {shown} (run {result.warehouse_run_id})")
        print(format_evaluation(result))
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "run": cmd_run,
    "backfill": cmd_backfill,
    "generate": cmd_generate,
    "bench": cmd_bench,
    "dev": cmd_dev,
    "check": cmd_check,
    "evaluate": cmd_evaluate,
}
