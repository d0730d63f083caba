"""``marts.publish_info`` and ``marts.publish_tables``: what a warehouse version holds.

Written by both publishers with the same columns: ``publish_info`` has one row (run_id,
as_of_date, published_at (with time zone), storage_version, table_count, tables_json,
score_version: the churn score's definition behind ``churn_probability``, read from
``marts.churn_model_report``; null when it is not published) and
``publish_tables`` one row per published table (schema_name, table_name, row_count).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

INFO_SCHEMA = "marts"
INFO_TABLE = "publish_info"
INFO_TABLES_TABLE = "publish_tables"

#: marts whose rows are dated: a warehouse as of D publishes none dated after D, even when
#: the work DB holds later dates (a run for an older D after a newer one, --allow-older)
DATED_MARTS = {
    "client_status_history": "as_of_date",
    "client_stage_transitions": "transition_date",
}


def as_of_filter(schema: str, table: str, as_of_date: date) -> str:
    """SQL ``where`` clause (with the keyword) cutting ``schema.table`` at ``as_of_date``,
    or ``""`` for a table that is not dated."""
    column = DATED_MARTS.get(table) if schema == INFO_SCHEMA else None
    if column is None:
        return ""
    return f" where \"{column}\" <= date '{as_of_date.isoformat()}'"


def read_published(
    execute: Callable[..., Any], fetch: Callable[[], Any], schema: str
) -> tuple[date, str] | None:
    """(as_of_date, run_id) of the published version, or None when there is none."""
    try:
        execute(f"select as_of_date, run_id from {schema}.{INFO_TABLE}")
        rows = fetch()
    except Exception:  # no warehouse yet, or not one of ours: nothing published
        return None
    if not rows:
        return None
    day = rows[0][0]
    return (day if isinstance(day, date) else date.fromisoformat(str(day)), str(rows[0][1]))


_INFO_COLUMNS = (
    "run_id text not null, as_of_date date not null, published_at timestamptz not null, "
    "storage_version text not null, table_count integer not null, tables_json text not null, "
    "score_version text"
)

#: the published table the churn score's version is read from (schema, table)
SCORE_REPORT = (INFO_SCHEMA, "churn_model_report")


def score_version_query(qualified_report: str) -> str:
    """SQL reading the churn score's version from the published report table."""
    return f"select max(score_version) from {qualified_report}"


_TABLES_COLUMNS = "schema_name text not null, table_name text not null, row_count bigint not null"


def write_publish_info(
    execute: Callable[..., Any],
    schema: str,
    tables: dict[str, int],
    run_id: str,
    as_of_date: date,
    published_at: datetime,
    storage_version: str,
    placeholder: str = "?",
    score_version: str | None = None,
) -> None:
    """Create and fill both tables in ``schema`` (SQL text, already quoted/qualified).

    ``execute(sql, params)`` runs one statement: a DuckDB connection's ``execute``
    (``placeholder`` ``?``) or a psycopg2 cursor's (``%s``). ``published_at`` is time-zone aware
    (stored as ``timestamptz``, so BI tools show it in the reader's zone, not as a bare time).
    """

    def values(params: Sequence[Any]) -> str:
        return ", ".join([placeholder] * len(params))

    info = f"{schema}.{INFO_TABLE}"
    execute(f"create table {info} ({_INFO_COLUMNS})")
    row = [
        run_id,
        as_of_date,
        published_at,
        storage_version,
        len(tables),
        json.dumps(tables, sort_keys=True),
        score_version,
    ]
    execute(f"insert into {info} values ({values(row)})", row)
    per_table = f"{schema}.{INFO_TABLES_TABLE}"
    execute(f"create table {per_table} ({_TABLES_COLUMNS})")
    for qualified, rows in sorted(tables.items()):
        schema_name, name = qualified.split(".", 1)
        execute(f"insert into {per_table} values ({values([1, 2, 3])})", [schema_name, name, rows])
