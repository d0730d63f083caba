"""Bulk synthetic, contract-shaped sources for the extraction benchmark (cached).

Deterministic (~5 lines per order, clients = lines / 250), generated with DuckDB as a
Parquet folder, then copied into a SQLite file or a PostgreSQL database ``kam_bench_<lines>``.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
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

    from pipelines.publish.pg import (
        admin_connect,
        create_database,
        database_url,
        drop_database,
        pg_connect,
    )

    folders = build_parquet(order_lines, cache_dir / f"parquet_{order_lines}")
    name = f"kam_bench_{order_lines}"

    def connect(dbname: str):
        return pg_connect(admin_url, dbname=dbname, user="postgres")

    conn = admin_connect(admin_url)
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
            drop_database(admin_url, name)
    conn.close()
    if not ready:
        create_database(admin_url, name)
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
    rendered = database_url(admin_url, name)
    return {"erp": rendered, "crm": rendered}
