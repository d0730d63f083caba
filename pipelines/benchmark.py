"""Benchmarks: the whole daily pipeline at scale, and extraction alone on a bulk source.

    kam bench                                   # = kam bench pipeline (20,000 clients x 3 years)
    kam bench pipeline --clients 20000 --years 3 [--skip-postgres] [--pg-url URL]
    python -m pipelines.benchmark extract --order-lines 5000000 --source sqlite
    python -m pipelines.benchmark extract --order-lines 5000000 --source postgres \\
        --pg-url postgresql://postgres@127.0.0.1:5432/postgres
    python -m pipelines.benchmark extract --order-lines 5000000 --also 500000 --source parquet

``pipeline``: generates the demo sources with ``generate_demo`` (SQLite, cached under
``--cache-dir``, default ``$KAM_DATA_DIR/bench``), then times each phase of the daily run
in its own child process, with its peak RSS: extraction into a fresh work DB, the raw
Great Expectations checks, ``dbt build`` of every model and dbt test (as-of = the
generator's end date; dbt's own target and log folders go to the run's temporary folder,
never to the shared ``dbt/target``), the mart checks, the publish to a temporary DuckDB
warehouse and to a fresh PostgreSQL database (created and dropped). Prints a summary
table; exits 1 when a check or a dbt node failed (the figures are still printed).

``extract``: the source is a bulk synthetic, contract-shaped data set (deterministic;
~5 lines per order, clients = lines / 250) generated with DuckDB and cached under
``--cache-dir`` (SQLite file, Parquet folder, or a PostgreSQL database
``kam_bench_<lines>``), so a second run reuses it. Each extraction runs in a child process
into a fresh work DB, so the peak RSS printed is the extraction's own. ``--also`` runs a
second (smaller) size to show that memory stays bounded while the row count grows.

Peak RSS is VmHWM of the phase's process (Linux), or for dbt the ``ru_maxrss`` of the dbt
process reaped with ``wait4`` by a wrapper that imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.contract import DUCKDB_TYPES, TABLES, tables_of

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SQLITE_TYPES = {
    "string": "TEXT",
    "integer": "INTEGER",
    "double": "REAL",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
PG_TYPES = {
    "string": "text",
    "integer": "bigint",
    "double": "double precision",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


# --------------------------------------------------------------------------- data


def _synthetic_sql(order_lines: int) -> dict[str, str]:
    """DuckDB queries producing every contract table for ``order_lines`` lines."""
    orders = max(1, order_lines // 5)
    clients = max(100, order_lines // 250)
    products = 2000
    managers = 200
    contacts = clients * 3
    interactions = clients * 20
    invoices = orders * 9 // 10
    start = "timestamp '2023-10-01 00:00:00'"
    return {
        "clients": f"""
            select 'C' || lpad(i::varchar, 7, '0') client_id, 'Client ' || i client_name,
              ['SMB', 'Mid', 'Enterprise'][1 + i % 3] segment,
              ['North', 'South', 'East', 'West'][1 + i % 4] region,
              ['Retail', 'Energy', 'Food', 'Tech', 'Health'][1 + i % 5] industry,
              'M' || lpad((i % {managers})::varchar, 4, '0') account_manager_id,
              ['KA', 'key', 'general', null][1 + i % 4] declared_tier,
              [15, 30, 45, 60][1 + i % 4]::bigint payment_terms_days,
              {start} - to_days((i % 900)::int) created_at,
              {start} + to_seconds((i % 86400)::bigint) updated_at
            from range({clients}) t(i)""",
        "products": f"""
            select 'P' || lpad(i::varchar, 5, '0') product_id, 'Product ' || i product_name,
              'Cat ' || (i % 40) category, {start} + to_seconds(i::bigint) updated_at
            from range({products}) t(i)""",
        "orders": f"""
            select 'O' || lpad(i::varchar, 9, '0') order_id,
              'C' || lpad((hash(i) % {clients})::varchar, 7, '0') client_id,
              (date '2023-10-01' + (i * 1096 // {orders})::int) order_date,
              case when i % 20 = 0 then 'returned' when i % 33 = 0 then 'cancelled'
                   else 'completed' end status,
              (date '2023-10-01' + (i * 1096 // {orders})::int)::timestamp
                + to_seconds((i % 86400)::bigint) updated_at
            from range({orders}) t(i)""",
        "order_lines": f"""
            select 'O' || lpad(i::varchar, 9, '0') order_id, l::bigint line_no,
              'P' || lpad((hash(i * 7 + l) % {products})::varchar, 5, '0') product_id,
              (1 + hash(i + l) % 20)::double quantity,
              round(1 + (hash(i * 3 + l) % 10000) / 100.0, 2) unit_price,
              case when (i + l) % 25 = 0 then null
                   else round(0.5 + (hash(i * 3 + l) % 7000) / 100.0, 2) end unit_cost,
              case when l = 1 then 0.5 else 0.0 end discount
            from range({orders}) t(i), range(1, {order_lines // orders + 1}) s(l)""",
        "invoices": f"""
            select 'I' || lpad(i::varchar, 9, '0') invoice_id,
              'C' || lpad((hash(i) % {clients})::varchar, 7, '0') client_id,
              'O' || lpad(i::varchar, 9, '0') order_id,
              (date '2023-10-01' + (i * 1096 // {orders})::int) issued_date,
              (date '2023-10-01' + (i * 1096 // {orders})::int + 30) due_date,
              round((hash(i) % 100000) / 10.0, 2) amount,
              case when i % 10 = 0 then null
                   else date '2023-10-01' + (i * 1096 // {orders})::int + (i % 45)::int
              end paid_date,
              (date '2023-10-01' + (i * 1096 // {orders})::int)::timestamp
                + to_seconds((i % 86400)::bigint) updated_at
            from range({invoices}) t(i)""",
        "managers": f"""
            select 'M' || lpad(i::varchar, 4, '0') manager_id, 'Manager ' || i manager_name,
              case when i = 0 then 'director' when i % 10 = 0 then 'head'
                   else 'specialist' end level,
              'Team ' || (i % 10) team, date '2018-01-01' + (i * 5)::int hired_at,
              case when i % 17 = 0 then date '2025-06-30' end left_at
            from range({managers}) t(i)""",
        "contacts": f"""
            select 'K' || lpad(i::varchar, 8, '0') contact_id,
              'C' || lpad((i // 3)::varchar, 7, '0') client_id, 'Contact ' || i full_name,
              'Position ' || (i % 3) position,
              ['director', 'head', 'specialist'][1 + i % 3] level,
              i % 3 = 0 is_decision_maker, date '2020-01-01' + (i % 1000)::int started_at,
              case when i % 11 = 0 then date '2025-01-01' + (i % 300)::int end left_at,
              {start} + to_seconds((i % 86400)::bigint) updated_at
            from range({contacts}) t(i)""",
        "interactions": f"""
            select 'X' || lpad(i::varchar, 9, '0') interaction_id,
              'C' || lpad((hash(i) % {clients})::varchar, 7, '0') client_id,
              case when i % 4 = 0 then null
                   else 'K' || lpad(((hash(i) % {clients}) * 3)::varchar, 8, '0') end contact_id,
              'M' || lpad((i % {managers})::varchar, 4, '0') manager_id,
              {start} + to_seconds((i * 94694400 // {interactions})::bigint) occurred_at,
              ['call', 'email', 'meeting', 'visit', 'message'][1 + i % 5] channel,
              case when i % 15 = 0 then 'complaint' else 'touch' end kind,
              case when i % 3 = 0 then (1 + i % 5)::bigint end satisfaction,
              case when i % 15 = 0 then {start}
                   + to_seconds((i * 94694400 // {interactions} + 86400)::bigint) end resolved_at,
              {start} + to_seconds((i * 94694400 // {interactions})::bigint) updated_at
            from range({interactions}) t(i)""",
    }


def build_parquet(order_lines: int, folder: Path) -> dict[str, Path]:
    """Write the synthetic source as ``folder/<system>/<table>.parquet`` (cached)."""
    import duckdb

    done = folder / "READY"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        con = duckdb.connect()
        try:
            for name, sql in _synthetic_sql(order_lines).items():
                table = next(t for t in TABLES if t.name == name)
                out = folder / table.system / f"{name}.parquet"
                out.parent.mkdir(parents=True, exist_ok=True)
                cols = ", ".join(
                    f"cast({c.name} as {DUCKDB_TYPES[c.type]}) as {c.name}" for c in table.columns
                )
                con.execute(
                    f"copy (select {cols} from ({sql})) to '{out}' "
                    "(format parquet, row_group_size 100000)"
                )
        finally:
            con.close()
        done.write_text(str(order_lines))
    return {"erp": folder / "erp", "crm": folder / "crm"}


def _sqlite_value(v: Any) -> Any:
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ") if hasattr(v, "hour") else v.isoformat()
    return v


def build_sqlite(order_lines: int, cache_dir: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    folders = build_parquet(order_lines, cache_dir / f"parquet_{order_lines}")
    out = cache_dir / f"sqlite_{order_lines}"
    if not (out / "READY").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for system in ("erp", "crm"):
            con = sqlite3.connect(out / f"{system}.sqlite")
            try:
                con.execute("pragma journal_mode = off")
                con.execute("pragma synchronous = off")
                for table in tables_of(system):
                    cols = ", ".join(f"{c.name} {SQLITE_TYPES[c.type]}" for c in table.columns)
                    keys = ", ".join(table.primary_key)
                    con.execute(f"create table {table.name} ({cols}, primary key ({keys}))")
                    marks = ", ".join("?" for _ in table.columns)
                    pfile = pq.ParquetFile(folders[system] / f"{table.name}.parquet")
                    for batch in pfile.iter_batches(batch_size=100_000):
                        columns = [
                            [_sqlite_value(v) for v in batch.column(i).to_pylist()]
                            for i in range(batch.num_columns)
                        ]
                        con.executemany(
                            f"insert into {table.name} values ({marks})", zip(*columns, strict=True)
                        )
                    if table.incremental_column:
                        con.execute(
                            f"create index {table.name}_incr on {table.name} "
                            f"({table.incremental_column})"
                        )
                con.commit()
            finally:
                con.close()
        (out / "READY").write_text(str(order_lines))
    return {s: f"sqlite:///{out / f'{s}.sqlite'}" for s in ("erp", "crm")}


def build_postgres(order_lines: int, cache_dir: Path, admin_url: str) -> dict[str, str]:
    import duckdb
    import psycopg2
    from sqlalchemy.engine import make_url

    folders = build_parquet(order_lines, cache_dir / f"parquet_{order_lines}")
    admin = make_url(admin_url)
    name = f"kam_bench_{order_lines}"

    def connect(dbname: str):
        return psycopg2.connect(
            host=admin.host or "127.0.0.1",
            port=admin.port or 5432,
            user=admin.username or "postgres",
            password=admin.password,
            dbname=dbname,
        )

    conn = connect(admin.database or "postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = %s", (name,))
        exists = cur.fetchone() is not None
    ready = False
    if exists:
        db = connect(name)
        with db.cursor() as cur:
            cur.execute("select to_regclass('public.kam_bench_ready') is not null")
            ready = cur.fetchone()[0]
        db.close()
        if not ready:
            with conn.cursor() as cur:
                cur.execute(f'drop database "{name}"')
    if not ready:
        with conn.cursor() as cur:
            cur.execute(f'create database "{name}"')
        db = connect(name)
        try:
            duck = duckdb.connect()
            with db.cursor() as cur, tempfile.TemporaryDirectory() as tmp:
                for table in TABLES:
                    cols = ", ".join(f"{c.name} {PG_TYPES[c.type]}" for c in table.columns)
                    keys = ", ".join(table.primary_key)
                    cur.execute(f"create table {table.name} ({cols}, primary key ({keys}))")
                    csv_path = Path(tmp) / f"{table.name}.csv"
                    src = folders[table.system] / f"{table.name}.parquet"
                    duck.execute(f"copy (select * from '{src}') to '{csv_path}' (header false)")
                    with csv_path.open() as fh:
                        cur.copy_expert(f"copy {table.name} from stdin with (format csv)", fh)
                    if table.incremental_column:
                        cur.execute(f"create index on {table.name} ({table.incremental_column})")
                cur.execute("create table kam_bench_ready (order_lines bigint)")
                cur.execute("analyze")
            duck.close()
            db.commit()
        finally:
            db.close()
    conn.close()
    url = admin.set(database=name, drivername="postgresql+psycopg2")
    rendered = url.render_as_string(hide_password=False)
    return {"erp": rendered, "crm": rendered}


# --------------------------------------------------------------------------- measure


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


def _child_extract(
    erp_url: str, crm_url: str, work_db: str, chunk_rows: int, memory_limit: str | None
) -> dict:
    """Runs in the child process: one full extraction, figures as a dict."""
    from pipelines.raw_loader import extract_all

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


# --------------------------------------------------------------------------- pipeline

DEMO_SEED = 42
DBT_EXCLUDE = "test_type:unit"  # dbt unit tests run in the test suite, not in the daily run
PHASES = (
    "generate",
    "extract",
    "quarantine",
    "raw checks",
    "dbt build",
    "mart checks",
    "publish duckdb",
    "publish postgres",
)


def default_cache_dir() -> Path:
    """``$KAM_DATA_DIR/bench`` (``./data/bench`` by default)."""
    from pipelines.settings import Settings

    return Settings.from_env().data_dir / "bench"


def default_pg_url() -> str:
    return os.environ.get("KAM_TEST_PG_URL") or os.environ.get("KAM_BENCH_PG_URL") or DEFAULT_PG_URL


def dbt_project_dir() -> Path:
    """The repository's dbt project (``dbt/`` beside ``pipelines/``)."""
    return Path(__file__).resolve().parent.parent / "dbt"


def _machine() -> dict:
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return {"cores": os.cpu_count() or 0, "memory_gb": round(mem_gb, 1)}


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _run_child(kind: str, payload: dict) -> dict:
    """Run one phase in a fresh Python process; its figures come back as JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.benchmark", "_child", kind, json.dumps(payload)],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# children: each returns seconds (measured inside the child), rows and peak_rss_mb


def _child_generate(p: dict) -> dict:
    from datetime import date

    from pipelines.generator import generate_demo

    started = time.perf_counter()
    kwargs: dict[str, Any] = {"clients": p["clients"], "years": p["years"], "seed": p["seed"]}
    if p.get("end_date"):
        kwargs["end_date"] = date.fromisoformat(p["end_date"])
    record = generate_demo(Path(p["out"]), **kwargs)
    seconds = time.perf_counter() - started
    counts = record.get("row_counts") or {}
    return {
        "seconds": seconds,
        "rows": sum(counts.values()),
        "peak_rss_mb": peak_rss_mb(),
        "end_date": str(record["end_date"]),
        "row_counts": counts,
    }


def _child_extract_all(p: dict) -> dict:
    from pipelines.raw_loader import extract_all

    started = time.perf_counter()
    loads = extract_all(Path(p["work_db"]), p["erp_url"], p["crm_url"], "bench", p["chunk_rows"])
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(x.rows_read for x in loads),
        "peak_rss_mb": peak_rss_mb(),
        "work_db_mb": Path(p["work_db"]).stat().st_size / 2**20,
        "tables": {f"{x.system}.{x.table}": x.rows_read for x in loads},
    }


def _child_quarantine(p: dict) -> dict:
    """The quarantine of bad raw rows (valid_* views that dbt reads) and the batch gates."""
    from contextlib import closing
    from datetime import date

    import duckdb

    from pipelines.quarantine import apply_quarantine, evaluate_gates
    from pipelines.settings import Settings

    settings = Settings.from_env()
    started = time.perf_counter()
    with closing(duckdb.connect(p["work_db"])) as con:
        summary = apply_quarantine(con, "bench", p["as_of"], today=date.today())
        gates = evaluate_gates(
            con,
            "bench",
            quarantine_max_share=settings.quarantine_max_share,
            row_drop_max_share=settings.row_drop_max_share,
        )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(c.table_rows for c in summary.totals()),
        "peak_rss_mb": peak_rss_mb(),
        "quarantined": summary.quarantined_rows,
        "gates": len(gates),
        "failed": [f"{g.system}.{g.table} {g.gate}: {g.message}" for g in gates if not g.passed],
    }


def _mart_relations(work_db: str) -> dict[str, list[str]]:
    import duckdb

    con = duckdb.connect(work_db, read_only=True)
    try:
        rows = con.execute(
            "select table_schema || '.' || table_name, column_name from information_schema.columns "
            "where table_schema = 'marts'"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for relation, column in rows:
        out.setdefault(relation, []).append(column)
    return out


def _child_checks(p: dict) -> dict:
    from datetime import date

    from pipelines.quality import (
        MART_CHECKS,
        CheckContext,
        applicable_checks,
        raw_checks,
        run_checks,
    )
    from pipelines.settings import Settings

    settings = Settings.from_env()
    ctx = CheckContext(
        as_of=date.fromisoformat(p["as_of"]),
        today=date.today(),
        revenue_band_days=settings.revenue_band_days,
        revenue_band_k=settings.revenue_band_k,
    )
    started = time.perf_counter()
    if p["stage"] == "mart":
        checks = applicable_checks(MART_CHECKS, _mart_relations(p["work_db"]))
    else:
        checks = raw_checks()
    outcomes = run_checks(p["work_db"], checks, ctx)
    seconds = time.perf_counter() - started
    slowest = sorted(outcomes, key=lambda co: co[1].seconds, reverse=True)[:3]
    return {
        "seconds": seconds,
        "rows": sum(o.rows for _, o in outcomes),
        "peak_rss_mb": peak_rss_mb(),
        "checks": len(outcomes),
        "expectations": sum(o.evaluated for _, o in outcomes),
        "skipped": sum(1 for _, o in outcomes if o.skipped),
        "failed": [o.summary() for _, o in outcomes if not o.success],
        "slowest": [{"check": o.name, "seconds": o.seconds, "rows": o.rows} for _, o in slowest],
    }


def _dbt_results(run_results: Path) -> dict:
    """Per-node figures of dbt's run_results.json: slowest models, tests' total."""
    data = json.loads(run_results.read_text())
    models, tests, statuses = [], [], {}
    for r in data.get("results", []):
        kind = r["unique_id"].split(".", 1)[0]
        statuses[f"{kind}:{r['status']}"] = statuses.get(f"{kind}:{r['status']}", 0) + 1
        entry = {"node": r["unique_id"].split(".")[-1], "seconds": r.get("execution_time") or 0.0}
        if kind == "model":
            models.append(entry)
        elif kind == "test":
            tests.append(entry)
    models.sort(key=lambda m: m["seconds"], reverse=True)
    return {
        "elapsed_seconds": data.get("elapsed_time"),
        "models": len(models),
        "models_seconds": sum(m["seconds"] for m in models),
        "slowest_models": models[:5],
        "tests": len(tests),
        "tests_seconds": sum(t["seconds"] for t in tests),
        "statuses": statuses,
        "failed_nodes": [
            r["unique_id"]
            for r in data.get("results", [])
            if r["status"] in ("error", "fail", "runtime error")
        ],
    }


def _child_dbt(p: dict) -> dict:
    """Run ``dbt build`` as a subprocess; its peak RSS comes from ``wait4``.

    This wrapper imports nothing heavy before starting dbt, so the figure is dbt's own.
    """
    project = p["project_dir"]
    run_dir = Path(p["run_dir"])
    dbt_vars = {"as_of_date": p["as_of"], "has_crm": p["has_crm"]}
    cmd = [
        str(Path(sys.executable).parent / "dbt"),
        "build",
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--vars",
        json.dumps(dbt_vars),
        "--exclude",
        DBT_EXCLUDE,
    ]
    env = os.environ.copy()
    env.update(
        KAM_WORK_DB=p["work_db"],
        DBT_TARGET_PATH=str(run_dir / "dbt_target"),  # never the shared dbt/target
        DBT_LOG_PATH=str(run_dir / "dbt_logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    log_file = run_dir / "dbt_build.log"
    started = time.perf_counter()
    with log_file.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    run_results = run_dir / "dbt_target" / "run_results.json"
    if not run_results.exists():
        tail = log_file.read_text()[-4000:]
        raise RuntimeError(f"dbt build wrote no run_results.json (exit {proc.returncode}):\n{tail}")
    result = {
        "seconds": seconds,
        "peak_rss_mb": maxrss,
        "exit_code": proc.returncode,
        "command": " ".join(cmd[1:]),
        "log": str(log_file),
        **_dbt_results(run_results),
    }
    import duckdb

    con = duckdb.connect(p["work_db"], read_only=True)
    try:
        tables = con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' and table_type = 'BASE TABLE'"
        ).fetchall()
        result["mart_rows"] = {
            name: con.execute(f'select count(*) from marts."{name}"').fetchall()[0][0]
            for (name,) in tables
        }
    finally:
        con.close()
    return result


def _child_publish_duckdb(p: dict) -> dict:
    from pipelines.publish import publish_duckdb

    warehouse = Path(p["warehouse"])
    started = time.perf_counter()
    result = publish_duckdb(Path(p["work_db"]), warehouse, "bench", p["as_of"])
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(result.tables.values()),
        "tables": len(result.tables),
        "peak_rss_mb": peak_rss_mb(),
        "file_mb": warehouse.stat().st_size / 2**20,
    }


def _child_publish_postgres(p: dict) -> dict:
    from pipelines.publish_postgres import publish_postgres

    started = time.perf_counter()
    result = publish_postgres(Path(p["work_db"]), p["pg_url"], "bench", p["as_of"])
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(result.tables.values()),
        "tables": len(result.tables),
        "peak_rss_mb": peak_rss_mb(),
    }


CHILDREN = {
    "generate": _child_generate,
    "extract": _child_extract_all,
    "quarantine": _child_quarantine,
    "checks": _child_checks,
    "dbt": _child_dbt,
    "publish_duckdb": _child_publish_duckdb,
    "publish_postgres": _child_publish_postgres,
}


# PostgreSQL: a fresh database per benchmark run, dropped afterwards


def _pg_admin(admin_url: str):
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    conn = psycopg2.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


def create_pg_database(admin_url: str) -> tuple[str, str]:
    """Create an empty database ``kam_bench_pub_<random>``; returns (name, its URL)."""
    import uuid

    from sqlalchemy.engine import make_url

    name = f"kam_bench_pub_{uuid.uuid4().hex[:10]}"
    conn = _pg_admin(admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f'create database "{name}"')
    finally:
        conn.close()
    url = make_url(admin_url).set(database=name, drivername="postgresql+psycopg2")
    return name, url.render_as_string(hide_password=False)


def drop_pg_database(admin_url: str, name: str) -> None:
    conn = _pg_admin(admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (name,),
            )
            cur.execute(f'drop database if exists "{name}"')
    finally:
        conn.close()


def ensure_demo_sources(
    clients: int, years: int, cache_dir: Path, seed: int = DEMO_SEED
) -> tuple[Path, dict, bool]:
    """Generate the demo sources once per (clients, years, seed); returns (folder, figures,
    reused). The figures of a reused folder are those of its original generation."""
    folder = Path(cache_dir) / f"demo_c{clients}_y{years}_s{seed}"
    ready = folder / "READY.json"
    if ready.exists() and (folder / "erp.sqlite").exists() and (folder / "crm.sqlite").exists():
        return folder, json.loads(ready.read_text()), True
    shutil.rmtree(folder, ignore_errors=True)
    figures = _run_child(
        "generate", {"out": str(folder), "clients": clients, "years": years, "seed": seed}
    )
    ready.write_text(json.dumps(figures))
    return folder, figures, False


def _phase(name: str, figures: dict, note: str = "") -> dict:
    rows = figures.get("rows")
    seconds = figures["seconds"]
    return {
        "phase": name,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds if rows is not None and seconds > 0 else None,
        "peak_rss_mb": figures.get("peak_rss_mb"),
        "note": note,
        "details": figures,
    }


def _checks_note(figures: dict) -> str:
    note = f"{figures['checks']} checks, {figures['expectations']} expectations"
    if figures["skipped"]:
        note += f", {figures['skipped']} skipped"
    if figures["failed"]:
        note += f", {len(figures['failed'])} FAILED"
    return note


class PhaseFailed(RuntimeError):
    """A phase failed so that the next ones cannot run (e.g. dbt built no marts)."""


def _run_phases(report: dict, folder: Path, run_dir: Path, pg_url: str | None, say) -> None:
    phases: list[dict] = report["phases"]
    problems: list[str] = report["problems"]
    base = {"work_db": str(run_dir / "work" / "kam_work.duckdb"), "as_of": report["as_of"]}

    def add(name: str, figures: dict, note: str) -> None:
        phases.append(_phase(name, figures, note))
        say(_phase_line(phases[-1]))

    ext = _run_child(
        "extract",
        {
            **base,
            "erp_url": f"sqlite:///{folder / 'erp.sqlite'}",
            "crm_url": f"sqlite:///{folder / 'crm.sqlite'}",
            "chunk_rows": report["chunk_rows"],
        },
    )
    add("extract", ext, f"work DB {ext['work_db_mb']:.0f} MB")

    quarantine = _run_child("quarantine", base)
    add(
        "quarantine",
        quarantine,
        f"{quarantine['quarantined']:,} rows quarantined, {quarantine['gates']} gates",
    )
    problems += [f"gate failed: {f}" for f in quarantine["failed"]]

    raw = _run_child("checks", {**base, "stage": "raw"})
    add("raw checks", raw, _checks_note(raw))
    problems += [f"raw check failed: {f}" for f in raw["failed"]]

    dbt_payload = {
        **base,
        "run_dir": str(run_dir),
        "project_dir": str(dbt_project_dir()),
        "has_crm": True,
    }
    dbt = _run_child("dbt", dbt_payload)
    dbt["rows"] = ext["rows"]  # the raw rows the build reads
    mart_rows = sum(dbt["mart_rows"].values())
    add("dbt build", dbt, f"{dbt['models']} models, {dbt['tests']} tests; {mart_rows:,} mart rows")
    if dbt["exit_code"] != 0:
        kept = Path(report["sources"]).parent / "last_dbt_build.log"
        shutil.copyfile(dbt["log"], kept)
        raise PhaseFailed(
            f"dbt build exited {dbt['exit_code']}; failed: {', '.join(dbt['failed_nodes'])} "
            f"(log: {kept})"
        )

    mart = _run_child("checks", {**base, "stage": "mart"})
    add("mart checks", mart, _checks_note(mart))
    problems += [f"mart check failed: {f}" for f in mart["failed"]]
    if not mart["checks"]:
        problems.append("no mart check applied (no marts?)")

    warehouse = run_dir / "warehouse" / "kam.duckdb"
    duck = _run_child("publish_duckdb", {**base, "warehouse": str(warehouse)})
    add("publish duckdb", duck, f"{duck['tables']} tables, file {duck['file_mb']:.1f} MB")

    if pg_url:
        name, url = create_pg_database(pg_url)
        try:
            pg = _run_child("publish_postgres", {**base, "pg_url": url})
        finally:
            drop_pg_database(pg_url, name)
        add("publish postgres", pg, f"{pg['tables']} tables")


def bench_pipeline(
    clients: int = 20_000,
    years: int = 3,
    cache_dir: Path | None = None,
    pg_url: str | None = None,
    chunk_rows: int = 50_000,
    seed: int = DEMO_SEED,
    keep: bool = False,
    echo=None,
) -> dict:
    """Generate (or reuse) the demo sources, then time each phase of the daily pipeline
    in its own process: extract, quarantine (+ gates), raw checks, dbt build, mart checks,
    publish to DuckDB and (unless ``pg_url`` is None) to a fresh PostgreSQL database.
    Failed checks and a failed phase go to ``report["problems"]``.

    ``echo`` (e.g. ``print``) receives a line as each phase ends.
    """
    say = echo or (lambda _line: None)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "clients": clients,
        "years": years,
        "seed": seed,
        "chunk_rows": chunk_rows,
        "machine": _machine(),
        "loadavg_start": _loadavg(),
        "phases": [],
        "problems": [],
    }
    started = time.perf_counter()
    folder, gen, reused = ensure_demo_sources(clients, years, cache_dir, seed)
    as_of = gen["end_date"]
    report.update(as_of=as_of, sources=str(folder), source_rows=gen["row_counts"])
    report["phases"].append(_phase("generate", gen, "reused from cache" if reused else "SQLite"))
    say(_phase_line(report["phases"][-1]))

    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=cache_dir))
    try:
        _run_phases(report, folder, run_dir, pg_url, say)
    except Exception as exc:  # figures so far are still reported
        report["problems"].append(f"stopped: {type(exc).__name__}: {exc}")
    finally:
        if keep:
            report["run_dir"] = str(run_dir)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    report["wall_seconds"] = time.perf_counter() - started
    report["loadavg_end"] = _loadavg()
    return report


def _fmt_rows(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def _phase_line(ph: dict) -> str:
    rate = f"{ph['rows_per_s']:,.0f}" if ph["rows_per_s"] is not None else "-"
    rss = f"{ph['peak_rss_mb']:.0f}" if ph["peak_rss_mb"] is not None else "-"
    return (
        f"  {ph['phase']:<17}{_fmt_rows(ph['rows']):>13}{ph['seconds']:>10.1f}{rate:>12}"
        f"{rss:>8}  {ph['note']}"
    )


def format_pipeline(r: dict) -> str:
    m = r["machine"]
    load = lambda xs: " ".join(f"{x:.2f}" for x in xs) or "?"  # noqa: E731
    lines = [
        f"pipeline benchmark: {r['clients']:,} clients x {r['years']} years (seed {r['seed']}), "
        f"as-of {r['as_of']}, chunk_rows {r['chunk_rows']:,}",
        f"machine: {m['cores']} cores, {m['memory_gb']} GB RAM; load average "
        f"{load(r['loadavg_start'])} at start, {load(r['loadavg_end'])} at end",
        f"  {'phase':<17}{'rows':>13}{'seconds':>10}{'rows/s':>12}{'RSS MB':>8}  note",
    ]
    lines += [_phase_line(ph) for ph in r["phases"]]
    timed = [ph for ph in r["phases"] if ph["phase"] != "generate"]
    lines.append(
        f"  {'pipeline total':<17}{'':>13}{sum(ph['seconds'] for ph in timed):>10.1f}"
        f"{'':>12}{max((ph['peak_rss_mb'] or 0 for ph in timed), default=0):>8.0f}  "
        "extract..publish, excluding generate and process start-up"
    )
    by_name = {ph["phase"]: ph for ph in r["phases"]}
    dbt = by_name.get("dbt build", {}).get("details")
    if dbt:
        lines.append(
            f"dbt build: {dbt['seconds']:.1f} s wall (dbt's own elapsed "
            f"{dbt['elapsed_seconds'] or 0:.1f} s); {dbt['models']} models "
            f"{dbt['models_seconds']:.1f} s, {dbt['tests']} tests {dbt['tests_seconds']:.1f} s "
            "(node times summed over threads)"
        )
        lines.append(
            "  slowest models: "
            + ", ".join(f"{x['node']} {x['seconds']:.1f} s" for x in dbt["slowest_models"])
        )
    for name in ("raw checks", "mart checks"):
        det = by_name.get(name, {}).get("details")
        if det and det.get("slowest"):
            lines.append(
                f"{name}, slowest: "
                + ", ".join(f"{x['check']} {x['seconds']:.1f} s" for x in det["slowest"])
            )
    rows = r.get("source_rows") or {}
    if rows:
        lines.append("sources: " + ", ".join(f"{table} {n:,}" for table, n in rows.items()))
    for problem in r["problems"]:
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


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
        print(json.dumps(_child_extract(*json.loads(argv[1]))))
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
