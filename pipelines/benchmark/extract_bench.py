"""The extraction benchmark: ``extract_all`` on a bulk source, in a child process.

Each extraction runs in its own process into a fresh work DB, so the peak RSS printed is
the extraction's own.
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


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB.

    Linux: VmHWM (reset at exec, so a child does not inherit its parent's peak, which
    ``ru_maxrss`` does); elsewhere ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def child_extract(
    erp_url: str, crm_url: str, work_db: str, chunk_rows: int, memory_limit: str | None
) -> dict:
    """Runs in the child process: one full extraction, figures as a dict."""
    from pipelines.extract.raw_loader import extract_all

    rss_before = peak_rss_mb()
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


def format_result(r: dict) -> str:
    lines = [
        f"extract from {r['source']}: {r['order_lines']:,} order lines, chunk_rows "
        f"{r['chunk_rows']:,}, DuckDB memory_limit {r['duckdb_memory_limit'] or 'default'} "
        f"(source ready in {r['build_seconds']:.1f} s)",
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
    return "\n".join(lines)
