"""What BI tools see in both warehouses: comments, DECIMAL money, indexes, published_at with
time zone (real DuckDB file, real PostgreSQL server)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.comments import INFO_COMMENTS
from pipelines.publish.duckdb_file import publish_duckdb
from pipelines.publish.pg import pg_connect
from pipelines.publish.postgres import publish_postgres

AS_OF = date(2026, 9, 30)
TABLE_COMMENT = "One row per client: it's what BI shows."
COLUMN_COMMENTS = {
    "client_id": "Client key.",
    "revenue_at_stake": "churn_probability x net revenue; 'quoted' text",
}


@pytest.fixture
def work_db(tmp_path: Path) -> Path:
    """A work DB as dbt leaves it with persist_docs: commented mart, DECIMAL money, and a
    history table; one column without a description."""
    path = tmp_path / "kam_work.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts; create schema audit")
    con.execute(
        "create table marts.client_overview (client_id varchar, revenue_at_stake "
        "decimal(18,2), churn_probability decimal(5,4), note varchar)"
    )
    con.execute(
        "insert into marts.client_overview values ('c1', 3267459.87, 0.9996, null), "
        "('c2', 0.01, 0.0001, 'x')"
    )
    table_text = TABLE_COMMENT.replace("'", "''")
    con.execute(f"comment on table marts.client_overview is '{table_text}'")
    for column, text in COLUMN_COMMENTS.items():
        escaped = text.replace("'", "''")
        con.execute(f"comment on column marts.client_overview.{column} is '{escaped}'")
    con.execute(
        "create table marts.client_status_history as select date '2026-09-01' + i::integer"
        " as as_of_date, 'c' || (i % 5) as client_id from range(50) t(i)"
    )
    con.execute("create table audit.quarantine as select 1 as x")
    con.close()
    return path


def _duck(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_duckdb_file_carries_comments_decimal_and_aware_published_at(
    work_db: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh" / "kam.duckdb"
    publish_duckdb(work_db, warehouse, "run-bi-1", AS_OF)
    [(table_comment,)] = _duck(
        warehouse, "select comment from duckdb_tables() where table_name = 'client_overview'"
    )
    assert table_comment == TABLE_COMMENT
    columns = dict(
        _duck(
            warehouse,
            "select column_name, comment from duckdb_columns() "
            "where table_name = 'client_overview'",
        )
    )
    assert {k: columns[k] for k in COLUMN_COMMENTS} == COLUMN_COMMENTS
    assert columns["note"] is None  # no description, no invented one
    # publish_info/publish_tables describe themselves
    info = dict(
        _duck(
            warehouse,
            "select column_name, comment from duckdb_columns() where table_name = 'publish_info'",
        )
    )
    assert info == INFO_COMMENTS[("marts", "publish_info")].columns
    types = dict(
        _duck(
            warehouse,
            "select column_name, data_type from duckdb_columns() "
            "where table_name in ('client_overview', 'publish_info')",
        )
    )
    assert types["revenue_at_stake"] == "DECIMAL(18,2)"
    assert types["published_at"] == "TIMESTAMP WITH TIME ZONE"
    [(stake,)] = _duck(
        warehouse, "select revenue_at_stake from marts.client_overview where client_id = 'c1'"
    )
    assert stake == Decimal("3267459.87")


def _pg(url: str, sql: str) -> list[tuple]:
    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def test_postgres_carries_comments_numeric_indexes_and_timestamptz(
    work_db: Path, pg_url: str
) -> None:
    publish_postgres(work_db, pg_url, "run-bi-1", AS_OF)
    publish_postgres(work_db, pg_url, "run-bi-2", AS_OF)  # survives a swap
    [(table_comment,)] = _pg(pg_url, "select obj_description('marts.client_overview'::regclass)")
    assert table_comment == TABLE_COMMENT
    columns = dict(
        _pg(
            pg_url,
            "select a.attname, col_description(a.attrelid, a.attnum) from pg_attribute a "
            "where a.attrelid = 'marts.client_overview'::regclass and a.attnum > 0",
        )
    )
    assert {k: columns[k] for k in COLUMN_COMMENTS} == COLUMN_COMMENTS
    assert columns["note"] is None
    [(info_comment,)] = _pg(pg_url, "select obj_description('marts.publish_info'::regclass)")
    assert info_comment == INFO_COMMENTS[("marts", "publish_info")].table
    types = dict(
        _pg(
            pg_url,
            "select column_name, data_type || coalesce('(' || numeric_precision || ','"
            " || numeric_scale || ')', '') from information_schema.columns "
            "where table_schema = 'marts' and table_name in ('client_overview', 'publish_info')",
        )
    )
    assert types["revenue_at_stake"] == "numeric(18,2)"
    assert types["churn_probability"] == "numeric(5,4)"
    assert types["published_at"] == "timestamp with time zone"
    [(stake,)] = _pg(
        pg_url, "select revenue_at_stake from marts.client_overview where client_id = 'c1'"
    )
    assert stake == Decimal("3267459.87")
    indexes = {
        (table, definition.split(" USING btree ")[1])
        for table, definition in _pg(
            pg_url, "select tablename, indexdef from pg_indexes where schemaname = 'marts'"
        )
    }
    assert {
        ("client_status_history", "(as_of_date)"),
        ("client_status_history", "(client_id)"),
        ("client_overview", "(client_id)"),
    } <= indexes
    # the planner uses the index for one client's history (enough rows to matter)
    plan = _pg(
        pg_url,
        "set enable_seqscan = off; explain select * from marts.client_status_history "
        "where client_id = 'c1'",
    )
    assert "client_status_history__client_id_idx" in " ".join(r[0] for r in plan)
