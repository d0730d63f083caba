"""Command line of the benchmarks (``kam bench``, ``python -m pipelines.benchmark``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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
        description="Benchmarks. Without a subcommand: `pipeline` with its defaults.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
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
    if argv[:1] == ["_child"]:
        print(json.dumps(CHILDREN[argv[1]](json.loads(argv[2])), default=str), flush=True)
        return 0
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["pipeline", *argv]
    args = _parser().parse_args(argv)
    if args.command == "pipeline":
        return _cmd_pipeline(args)
    return _cmd_extract(args)


if __name__ == "__main__":
    raise SystemExit(main())
