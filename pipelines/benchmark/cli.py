"""Command line of the benchmarks (``kam bench``, ``python -m pipelines.benchmark``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.benchmark.daily import bench_daily, format_daily
from pipelines.benchmark.data import DEFAULT_PG_URL
from pipelines.benchmark.extract_bench import bench_extract, child_extract, format_result
from pipelines.benchmark.phases import CHILDREN
from pipelines.benchmark.pipeline import (
    DEMO_SEED,
    bench_pipeline,
    default_cache_dir,
    default_pg_url,
    format_pipeline,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kam bench",
        description=(
            "Benchmarks. Without a subcommand: `daily` on the 600-client demo (two real "
            "`kam run`s and their floors, 3-5 minutes on 2 cores); `pipeline` is the phase "
            "by phase benchmark at 20,000 clients (much longer)."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    daily = sub.add_parser(
        "daily",
        help="a real `kam run` beside its floor (the same work in one DuckDB process), per "
        "phase with the ratio; then the next day's run",
        description=(
            "Times a real `kam run --as-of D` (a subprocess with a fresh KAM_DATA_DIR) and "
            "splits it into phases from its Dagster step events, then runs the floor: the "
            "same sources loaded and the same compiled dbt models, tests and checks run as "
            "plain SQL in one DuckDB process. Then adds a day of orders to the sources and "
            "does the same for D + 1 (the next day's run, incremental). Prints phase | "
            "pipeline s | floor s | ratio, peak RSS, the load average and the issue 12 "
            "targets; checks that the floor's marts have the pipeline's row counts. "
            "Sources: the demo generator's (600 clients = the data of `kam demo`), cached."
        ),
    )
    daily.add_argument("--clients", type=int, default=600, help="600 = the kam demo data")
    daily.add_argument("--years", type=int, default=3)
    daily.add_argument("--seed", type=int, default=DEMO_SEED)
    daily.add_argument("--cache-dir", type=Path, default=None, help="default: $KAM_DATA_DIR/bench")
    daily.add_argument("--no-next-day", action="store_true", help="only the first run")
    daily.add_argument("--keep", action="store_true", help="keep the data dirs and floors")
    daily.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pipe = sub.add_parser(
        "pipeline", help="time every phase of the daily pipeline on generated demo data"
    )
    pipe.add_argument("--clients", type=int, default=20_000)
    pipe.add_argument("--years", type=int, default=3)
    pipe.add_argument("--seed", type=int, default=DEMO_SEED)
    pipe.add_argument("--chunk-rows", type=int, default=50_000)
    pipe.add_argument("--cache-dir", type=Path, default=None, help="default: $KAM_DATA_DIR/bench")
    pipe.add_argument(
        "--pg-url",
        default=None,
        help="PostgreSQL server for the publish phase (a fresh database is created and "
        "dropped); default KAM_TEST_PG_URL or " + DEFAULT_PG_URL,
    )
    pipe.add_argument("--skip-postgres", action="store_true")
    pipe.add_argument("--keep", action="store_true", help="keep the work DB and warehouse")
    pipe.add_argument("--json", action="store_true", help="print JSON instead of a table")

    ext = sub.add_parser("extract", help="time extract_all on a large synthetic source")
    ext.add_argument("--order-lines", type=int, default=5_000_000)
    ext.add_argument("--also", type=int, nargs="*", default=[], help="other sizes to run")
    ext.add_argument("--source", choices=["sqlite", "postgres", "parquet"], default="sqlite")
    ext.add_argument("--chunk-rows", type=int, default=50_000)
    ext.add_argument("--cache-dir", type=Path, default=None, help="default: $KAM_DATA_DIR/bench")
    ext.add_argument("--pg-url", default=os.environ.get("KAM_BENCH_PG_URL", DEFAULT_PG_URL))
    ext.add_argument("--duckdb-memory-limit", default=None, help="e.g. 256MB")
    ext.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _cmd_pipeline(args: argparse.Namespace) -> int:
    pg_url = None if args.skip_postgres else (args.pg_url or default_pg_url())
    echo = None if args.json else (lambda line: print(line, flush=True))
    if echo:
        echo(f"phases ({args.clients:,} clients x {args.years} years), as each ends:")
    report = bench_pipeline(
        args.clients,
        args.years,
        args.cache_dir,
        pg_url,
        args.chunk_rows,
        args.seed,
        args.keep,
        echo,
    )
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_pipeline(report), flush=True)
        if report.get("run_dir"):
            print(f"work DB and warehouse kept in {report['run_dir']}")
    return 1 if report["problems"] else 0


def _cmd_daily(args: argparse.Namespace) -> int:
    echo = None if args.json else (lambda line: print(line, flush=True))
    report = bench_daily(
        args.clients,
        args.years,
        args.cache_dir,
        args.seed,
        next_day=not args.no_next_day,
        keep=args.keep,
        echo=echo,
    )
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        # the days' tables were printed as each day ended: the summary alone here
        print("\n" + format_daily(report, with_days=False), flush=True)
        if report.get("run_dir"):
            print(f"data dirs and floors kept in {report['run_dir']}")
    return 1 if report["problems"] else 0


def _cmd_extract(args: argparse.Namespace) -> int:
    cache_dir = args.cache_dir or default_cache_dir()
    results = []
    for size in sorted({args.order_lines, *args.also}):
        result = bench_extract(
            args.source,
            size,
            cache_dir,
            args.chunk_rows,
            args.pg_url,
            args.duckdb_memory_limit,
        )
        results.append(result)
        if not args.json:
            print(format_result(result), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_child-extract"]:
        print(json.dumps(child_extract(*json.loads(argv[1]))))
        return 0
    if argv[:1] == ["_floor"]:
        from pipelines.benchmark.floor import floor_child

        floor_child(Path(argv[1]))
        return 0
    if argv[:1] == ["_child"]:
        print(json.dumps(CHILDREN[argv[1]](json.loads(argv[2])), default=str), flush=True)
        return 0
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["daily", *argv]  # a few minutes on the demo; `pipeline` takes much longer
    args = _parser().parse_args(argv)
    commands = {"daily": _cmd_daily, "pipeline": _cmd_pipeline, "extract": _cmd_extract}
    return commands[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
