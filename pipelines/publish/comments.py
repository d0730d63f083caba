"""Descriptions of the published tables and columns (``COMMENT ON``) on both warehouses.

dbt writes every mart's description and its columns' into the work DB (``persist_docs``
in dbt_project.yml); a publish copies them from there, so the published DuckDB file and the
PostgreSQL schema carry them and BI tools (psql ``\\d+``, Superset, harlequin) show them.
``publish_info`` and ``publish_tables`` are written by the publishers themselves and get
their comments from :data:`INFO_COMMENTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from pipelines.publish.publish_info import INFO_SCHEMA, INFO_TABLE, INFO_TABLES_TABLE


@dataclass
class Comments:
    """The description of one table and of its columns (only those that have one)."""

    table: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


INFO_COMMENTS: dict[tuple[str, str], Comments] = {
    (INFO_SCHEMA, INFO_TABLE): Comments(
        "What this warehouse version holds: one row per publish.",
        {
            "run_id": "Dagster run that published this version.",
            "as_of_date": "The run's as-of date D (the day the marts describe).",
            "published_at": "When this version was published (with time zone, UTC).",
            "storage_version": "DuckDB storage version of the file, or the PostgreSQL version.",
            "table_count": "Tables published.",
            "tables_json": "Rows per published table, as JSON {schema.table: rows}.",
            "score_version": (
                "Version of the churn score's definition behind churn_probability and the "
                "flags (churn_model_report.score_version); null without that report."
            ),
        },
    ),
    (INFO_SCHEMA, INFO_TABLES_TABLE): Comments(
        "One row per published table with its row count.",
        {
            "schema_name": "Schema of the published table.",
            "table_name": "Name of the published table.",
            "row_count": "Rows published.",
        },
    ),
}


#: the audit tables are written by the pipeline's Python (gate, extract), not by dbt
AUDIT_COMMENTS: dict[tuple[str, str], Comments] = {
    ("audit", "quarantine"): Comments(
        "Source rows set aside by the quarantine rules (never loaded into the marts).",
        {
            "run_id": "Run that quarantined the row.",
            "quarantined_at": "When it was quarantined (UTC).",
            "system": "Source system (erp or crm).",
            "source_table": "Source table of the row.",
            "record_key": "The row's key in its source table.",
            "rule": "First quarantine rule the row broke.",
            "rule_description": "That rule in words.",
            "other_rules": "Further rules the row broke, if any.",
            "row_json": "The row as read from the source, as JSON.",
        },
    ),
    ("audit", "quarantine_runs"): Comments(
        "Quarantined rows per run, source table and rule.",
        {
            "run_id": "Run.",
            "as_of_date": "The run's as-of date D.",
            "system": "Source system (erp or crm).",
            "source_table": "Source table.",
            "rule": "Quarantine rule.",
            "quarantined_rows": "Rows quarantined by the rule.",
            "table_rows": "Rows read from the table.",
            "share": "quarantined_rows / table_rows.",
            "recorded_at": "When it was recorded (UTC).",
        },
    ),
    ("audit", "deleted_rows"): Comments(
        "Source rows that disappeared from their source since the previous extract.",
        {
            "system": "Source system (erp or crm).",
            "table_name": "Source table.",
            "record_key": "The row's key.",
            "row_json": "The row as last seen, as JSON.",
            "run_id": "Run that noticed the deletion.",
            "deleted_at": "When the deletion was noticed (UTC).",
        },
    ),
}


def describe(
    found: Mapping[tuple[str, str], Comments],
    published: Mapping[tuple[str, str], Collection[str]],
) -> dict[tuple[str, str], Comments]:
    """``found`` (from dbt) plus the pipeline's own descriptions, for the ``published``
    tables (key -> its column names) only; a description dbt gives wins, a column a table
    lacks is left out."""
    out: dict[tuple[str, str], Comments] = {}
    for key, columns in published.items():
        mine = Comments()
        for source in (found.get(key), AUDIT_COMMENTS.get(key), INFO_COMMENTS.get(key)):
            if source is None:
                continue
            mine.table = mine.table or source.table
            for column, text in source.columns.items():
                if column in columns:
                    mine.columns.setdefault(column, text)
        if mine.table or mine.columns:
            out[key] = mine
    return out


def read_duckdb_comments(
    con: duckdb.DuckDBPyConnection, database: str, schemas: Iterable[str]
) -> dict[tuple[str, str], Comments]:
    """Comments on the tables/views of ``schemas`` in attached ``database``."""
    schemas = list(schemas)
    out: dict[tuple[str, str], Comments] = {}
    tables = con.execute(
        """
        select schema_name, table_name, comment from duckdb_tables()
        where database_name = ? and list_contains(?, schema_name)
        union all
        select schema_name, view_name, comment from duckdb_views()
        where database_name = ? and list_contains(?, schema_name) and not internal
        """,
        [database, schemas, database, schemas],
    ).fetchall()
    for schema, table, comment in tables:
        out[(str(schema), str(table))] = Comments(str(comment) if comment else None)
    columns = con.execute(
        """
        select schema_name, table_name, column_name, comment from duckdb_columns()
        where database_name = ? and list_contains(?, schema_name) and comment is not null
          and comment <> ''
        """,
        [database, schemas],
    ).fetchall()
    for schema, table, column, comment in columns:
        key = (str(schema), str(table))
        if key in out:
            out[key].columns[str(column)] = str(comment)
    return out


def comment_statements(
    comments: Mapping[tuple[str, str], Comments],
    qualify: Callable[[str, str], str],
    quote: Callable[[str], str],
) -> list[str]:
    """``COMMENT ON`` statements (same syntax on DuckDB and PostgreSQL); ``qualify(schema,
    table)`` renders the target table, ``quote`` an identifier."""
    statements = []
    for (schema, table), found in sorted(comments.items()):
        target = qualify(schema, table)
        if found.table:
            statements.append(f"comment on table {target} is {_literal(found.table)}")
        for column, text in sorted(found.columns.items()):
            statements.append(f"comment on column {target}.{quote(column)} is {_literal(text)}")
    return statements


def apply_comments(
    execute: Callable[[str], Any],
    comments: Mapping[tuple[str, str], Comments],
    qualify: Callable[[str, str], str],
    quote: Callable[[str], str],
) -> int:
    """Run the statements; returns how many objects got a comment."""
    statements = comment_statements(comments, qualify, quote)
    for statement in statements:
        execute(statement)
    return len(statements)


def _literal(text: str) -> str:
    # standard SQL string literal: valid on DuckDB and on PostgreSQL (standard_conforming_strings)
    return "'" + text.replace("'", "''") + "'"
