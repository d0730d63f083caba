"""The extraction benchmark: ``extract_all`` on a bulk source, in a child process.

Each extraction runs in its own process into a fresh work DB, so the peak RSS printed is
the extraction's own. Before it, the child times the source reader alone (every table
through ``Source.iter_batches``, nothing written: the connector's own rows/s and peak
RSS) and, on PostgreSQL, ``COPY (select ...) TO STDOUT`` of the same query into a null
sink: what the server and the wire give at most, the yardstick of the reader.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines.benchmark.data import DEFAULT_PG_URL, build_parquet, build_postgres, build_sqlite
from pipelines.process_guard import own_peak_rss_mb


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB.

    Linux: VmHWM (reset at exec, so a child does not inherit its parent's peak, which
    ``ru_maxrss`` does); elsewhere ``ru_maxrss``.
    """
    own = own_peak_rss_mb()
    if own is not None:
        return own
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


class _NullSink:
    """A file that counts and drops what COPY writes to it."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes | str) -> int:
        self.bytes += len(data)
        return len(data)


def _copy_seconds(source, table) -> float | None:
    """Seconds of ``COPY (<the reader's query>) TO STDOUT`` (text) into a null sink."""
    from pipelines.extract.fast_sql import inline_sql

    if source.engine.dialect.name != "postgresql":
        return None
    sql = inline_sql(source._statement(table, None), source.engine.dialect)
    raw = source.engine.raw_connection()
    try:
        with raw.cursor() as cur:
            started = time.perf_counter()
            cur.copy_expert(f"COPY ({sql}) TO STDOUT", _NullSink())
            return time.perf_counter() - started
    finally:
        raw.close()


def _read_seconds(source, table, chunk_rows: int) -> tuple[int, float]:
    started = time.perf_counter()
    rows = sum(b.num_rows for b in source.iter_batches(table, None, chunk_rows))
    return rows, time.perf_counter() - started


def child_read(erp_url: str, crm_url: str, chunk_rows: int, repeats: int = 3) -> list[dict]:
    """Runs in the child process: every table read by its source alone (and by COPY).

    Reader and COPY alternate ``repeats`` times and the best time of each is kept: on a
    machine shared with other work the two would otherwise see different loads.
    """
    from pipelines.contract import tables_of
    from pipelines.extract.connect import open_source

    out = []
    for system, url in (("erp", erp_url), ("crm", crm_url)):
        with open_source(system, url) as source:
            for table in tables_of(system):  # type: ignore[arg-type]
                reads, copies = [], []
                for _ in range(max(1, repeats)):
                    rows, seconds = _read_seconds(source, table, chunk_rows)
                    reads.append(seconds)
                    copies.append(_copy_seconds(source, table))
                out.append(
                    {
                        "table": f"{system}.{table.name}",
                        "rows": rows,
                        "seconds": min(reads),
                        "copy_seconds": None if copies[0] is None else min(copies),
                    }
                )
    return out


def child_extract(
    erp_url: str,
    crm_url: str,
    work_db: str,
    chunk_rows: int,
    memory_limit: str | None,
    measure_reader: bool = True,
) -> dict:
    """Runs in the child process: the reader alone, then one full extraction."""
    from pipelines.extract.raw_loader import extract_all

    rss_before = peak_rss_mb()
    reader = child_read(erp_url, crm_url, chunk_rows) if measure_reader else []
    reader_rss = peak_rss_mb()
    started = time.perf_counter()
    loads = extract_all(
        Path(work_db), erp_url, crm_url, "bench", chunk_rows, duckdb_memory_limit=memory_limit
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(x.rows_read for x in loads),
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_imports_mb": rss_before,
        "reader": reader,
        "reader_peak_rss_mb": reader_rss,
        "tables": [
            {"table": f"{x.system}.{x.table}", "rows": x.rows_read, "seconds": x.seconds}
            for x in loads
        ],
    }


def bench_extract(
    source: str,
    order_lines: int,
    cache_dir: Path,
    chunk_rows: int = 50_000,
    pg_url: str = DEFAULT_PG_URL,
    duckdb_memory_limit: str | None = None,
) -> dict:
    """Build (or reuse) the source, then time ``extract_all`` in a child process."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    build_started = time.perf_counter()
    if source == "sqlite":
        urls = build_sqlite(order_lines, cache_dir)
    elif source == "postgres":
        urls = build_postgres(order_lines, cache_dir, pg_url)
    elif source == "parquet":
        urls = {
            k: str(v)
            for k, v in build_parquet(order_lines, cache_dir / f"parquet_{order_lines}").items()
        }
    else:
        raise ValueError(f"unknown source kind {source!r}")
    build_seconds = time.perf_counter() - build_started
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        work_db = Path(tmp) / "kam_work.duckdb"
        payload = json.dumps(
            [urls["erp"], urls["crm"], str(work_db), chunk_rows, duckdb_memory_limit]
        )
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.benchmark", "_child-extract", payload],
            capture_output=True,
            text=True,
            check=False,
            env=os.environ.copy(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"extraction child failed:\n{proc.stderr[-4000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["work_db_mb"] = work_db.stat().st_size / 2**20
    result.update(
        source=source,
        order_lines=order_lines,
        chunk_rows=chunk_rows,
        build_seconds=build_seconds,
        duckdb_memory_limit=duckdb_memory_limit,
    )
    return result


def format_reader(r: dict) -> list[str]:
    """The reader-alone lines: rows/s per table, and beside it COPY's and the ratio."""
    reader = r.get("reader") or []
    if not reader:
        return []
    with_copy = any(t["copy_seconds"] for t in reader)
    head = f"  {'table':<18}{'rows':>12}{'seconds':>10}{'rows/s':>12}"
    if with_copy:
        head += f"{'COPY rows/s':>14}{'reader/COPY':>13}"
    lines = ["  source reader alone (iter_batches, nothing written; best of 3):", head]
    for t in [*reader, _reader_total(reader)]:
        rate = t["rows"] / t["seconds"] if t["seconds"] > 0 else 0.0
        line = f"  {t['table']:<18}{t['rows']:>12,}{t['seconds']:>10.2f}{rate:>12,.0f}"
        if with_copy and t["copy_seconds"]:
            copy_rate = t["rows"] / t["copy_seconds"]
            line += f"{copy_rate:>14,.0f}{rate / copy_rate:>12.0%}"
        lines.append(line)
    lines.append(f"  reader peak RSS {r['reader_peak_rss_mb']:.0f} MB")
    return lines


def _reader_total(reader: list[dict]) -> dict:
    copies = [t["copy_seconds"] for t in reader]
    return {
        "table": "total",
        "rows": sum(t["rows"] for t in reader),
        "seconds": sum(t["seconds"] for t in reader),
        "copy_seconds": sum(copies) if all(copies) else None,
    }


def format_result(r: dict) -> str:
    lines = [
        f"extract from {r['source']}: {r['order_lines']:,} order lines, chunk_rows "
        f"{r['chunk_rows']:,}, DuckDB memory_limit {r['duckdb_memory_limit'] or 'default'} "
        f"(source ready in {r['build_seconds']:.1f} s)",
        "  extract_all (read + load into the work DB):",
        f"  {'table':<18}{'rows':>12}{'seconds':>10}{'rows/s':>12}",
    ]
    for t in r["tables"]:
        rate = t["rows"] / t["seconds"] if t["seconds"] > 0 else 0.0
        lines.append(f"  {t['table']:<18}{t['rows']:>12,}{t['seconds']:>10.2f}{rate:>12,.0f}")
    lines.append(
        f"  {'total':<18}{r['rows']:>12,}{r['seconds']:>10.2f}{r['rows'] / r['seconds']:>12,.0f}"
    )
    lines.append(
        f"  peak RSS {r['peak_rss_mb']:.0f} MB (after imports {r['rss_after_imports_mb']:.0f} MB),"
        f" work DB {r['work_db_mb']:.0f} MB"
    )
    return "\n".join([*lines, *format_reader(r)])
