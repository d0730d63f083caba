"""`kam`: the command line of the KAM pipeline.

    kam demo                    generate demo sources (if absent), run the daily job, show where
    kam run --as-of YYYY-MM-DD  run the daily job for one as-of date (KAM_ERP_URL, KAM_CRM_URL)
    kam backfill --from D1 --to D2   one run for the range: marts as of D2, history from D1
    kam generate --out DIR ...  write demo ERP/CRM sources
    kam check                   the preflight alone: settings, folders, sources, contract
    kam dev [--port 3000]       the Dagster UI and daemon on the same instance as kam run
    kam bench ...               benchmarks (pipelines.benchmark)
    kam evaluate --as-of D --horizon-days H   how often the churn flags of D were right
    kam reset                   archive the data dir's state (to point it at other sources)
    kam brief [--as-of D] [--manager M]   rebuild the daily brief from the published warehouse

Settings are checked before anything starts (``pipelines.settings``); runs go through
Dagster with the persistent instance (DAGSTER_HOME; default $KAM_DATA_DIR/dagster_home),
so they show in the UI (`dagster dev -w workspace.yaml`).
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
from datetime import date
from typing import NoReturn

from pipelines.run_params import parse_as_of

ALLOW_OLDER_HELP = (
    "publish an as-of date older than the one the warehouse holds (refused without it); "
    "nothing dated after it is published"
)


def _date_argument(value: str) -> date:
    try:
        return parse_as_of(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_epilog() -> str:
    from pipelines.settings import SETTINGS

    names = "\n".join(
        f"  {s.env:<28} {(s.default_doc or s.default).replace('`', '')}"
        for s in SETTINGS
        if s.env != "DAGSTER_HOME"
    )
    return (
        "example:\n"
        "  KAM_ERP_URL=postgresql://reader@erp-host/erp KAM_CRM_URL=sqlite:///crm.sqlite \\\n"
        "    kam run --as-of 2026-11-22\n\n"
        "settings (environment variables, default; see README 'Configuration'):\n"
        f"{names}\n  DAGSTER_HOME                 $KAM_DATA_DIR/dagster_home\n\n"
        "exit codes: 0 published; 1 a step or blocking check failed (nothing published);\n"
        "2 refused before any run was recorded (bad setting, source, folder or as-of date);\n"
        "3 published, then a later step (the brief) failed"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kam", description="KAM analytics pipeline")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("demo", help="generate demo sources, run the pipeline, show the warehouse")

    run = sub.add_parser(
        "run",
        help="run the daily job for one as-of date",
        description="Run the daily job for one as-of date D: extract, check, build, publish.",
        epilog=_run_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--as-of", required=True, type=_date_argument, help="YYYY-MM-DD")
    run.add_argument("--allow-older", action="store_true", help=ALLOW_OLDER_HELP)

    backfill = sub.add_parser(
        "backfill",
        help="backfill a range of as-of dates in one run (marts as of its last date)",
        description=(
            "Backfill the as-of dates D1..D2 in ONE run of the daily job: extraction and\n"
            "marts as of D2 (published like kam run --as-of D2), client_status_history\n"
            "rebuilt for every date from D1. Recorded as a run of the partition D2 tagged\n"
            "kam/rebuild_from=D1, so Dagster's storage grows by one run's events (~3 MB),\n"
            "not one per day of the range. Same checks before the run as kam run, for both\n"
            "dates."
        ),
        epilog=_run_epilog().replace(
            "kam run --as-of 2026-11-22", "kam backfill --from 2026-01-01 --to 2026-11-22"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backfill.add_argument(
        "--from",
        dest="from_date",
        metavar="D1",
        required=True,
        type=_date_argument,
        help="first as-of date of the range (YYYY-MM-DD)",
    )
    backfill.add_argument(
        "--to",
        dest="to_date",
        metavar="D2",
        required=True,
        type=_date_argument,
        help="last as-of date of the range, the marts' as-of date (YYYY-MM-DD)",
    )
    backfill.add_argument("--allow-older", action="store_true", help=ALLOW_OLDER_HELP)

    gen = sub.add_parser("generate", help="write demo ERP/CRM sources")
    gen.add_argument("--out", required=True, help="output folder")
    gen.add_argument("--clients", type=int, default=600)
    gen.add_argument("--years", type=int, default=3)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--end-date", type=_date_argument, default=None)

    sub.add_parser(
        "check", help="check settings, folders, sources and their contract; start nothing"
    )

    dev = sub.add_parser("dev", help="the Dagster UI and daemon on kam's instance (DAGSTER_HOME)")
    dev.add_argument(
        "--port", type=int, default=None, help="default 3000, or a free port when 3000 is taken"
    )

    bench = sub.add_parser("bench", help="benchmarks (arguments passed to pipelines.benchmark)")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)

    evaluate = sub.add_parser(
        "evaluate",
        help="how often the churn flags of an as-of date were right (backtest)",
        description=(
            "Judge the churn flags the warehouse holds for D by what each client did in the "
            "H days after D (the work DB's raw orders): ROC AUC of churn_probability, of the "
            "overdue ratio and of recency, the precision of churn_probability's and of "
            "recency's smallest top k reaching recall 0.50, precision and recall of each "
            "flag, the base rate, whether the horizon has passed. The warehouse must hold D "
            "(kam run --as-of D first)."
        ),
    )
    evaluate.add_argument("--as-of", required=True, type=_date_argument, help="YYYY-MM-DD")
    evaluate.add_argument(
        "--horizon-days", required=True, type=int, help="days after D a live client orders in"
    )
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument(
        "--partial",
        action="store_true",
        help="judge a horizon the data has not passed yet ('lost' is then overstated); "
        "without it such a horizon is refused (exit 2)",
    )

    sub.add_parser(
        "reset",
        help="archive the data dir's state (to build it from other sources); deletes nothing",
        description=(
            "Move the data dir's work DB, warehouse (when inside it), Dagster instance, reports, "
            "briefs, dbt files and sources record into $KAM_DATA_DIR/archive/<UTC time>/. "
            "The demo's generated sources stay. Refused while a run writes the work DB."
        ),
    )

    brief = sub.add_parser(
        "brief",
        help="rebuild the daily brief per manager from the published warehouse",
        description=(
            "Write the daily brief (one HTML page per manager and an index) of the published "
            "warehouse's as-of date under $KAM_DATA_DIR/briefs/<as_of>/. Reads the published "
            "warehouse only; --as-of must be the date it holds."
        ),
    )
    brief.add_argument("--as-of", type=_date_argument, default=None, help="YYYY-MM-DD")
    brief.add_argument("--manager", default=None, help="only this manager's page (and the index)")
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    from kam_assets.cli.commands import COMMANDS
    from kam_assets.cli.data_dir import capture_operator_env, forget_operator_env

    # Dagster's notes on its own beta parameters say nothing to an operator
    warnings.filterwarnings("ignore", message=r".* is currently in beta")

    args = build_parser().parse_args(argv)
    capture_operator_env()  # before a command exports DAGSTER_HOME: its printed commands
    try:
        return COMMANDS[args.command](args)
    finally:
        forget_operator_env()  # a caller in the same process (a test) starts afresh


def run() -> NoReturn:
    """The ``kam`` executable: :func:`main`, then exit without tearing the interpreter down.

    After a run, Python's own teardown of the modules Dagster, dbt and Great Expectations
    loaded took 1.7 s (measured from the run's last event to the process's end; 0.1 s with
    this). Everything a normal exit does that matters still happens first: non-daemon
    threads are joined, every atexit handler runs (logging's flush among them), stdout and
    stderr are flushed. Connections and files are closed by the commands themselves (no
    DuckDB WAL is left behind). Only ``kam``'s executable exits this way; ``main()`` returns
    normally to a caller such as a test."""
    code = main()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if code is None else code)  # as sys.exit(main()) would
