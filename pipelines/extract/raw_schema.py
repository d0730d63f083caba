"""DDL of the raw layer in the work DuckDB, derived from the source contract."""

from __future__ import annotations

import duckdb

from pipelines.contract import DUCKDB_TYPES, TABLES, Table

LOAD_COLUMNS = ("_run_id", "_loaded_at")
REJECTED_ROWS = "raw_meta.rejected_rows"
DELETED_ROWS = "raw_meta.deleted_rows"
#: ``raw_meta.rejected_rows.rule`` of a row kept aside because its key was read more than
#: once in one extraction (null there: a row with an unreadable value)
DUPLICATE_KEY = "duplicate_key"


def raw_schema_name(system: str) -> str:
    return f"raw_{system}"


def raw_table_name(table: Table) -> str:
    return f"{raw_schema_name(table.system)}.{table.name}"


def record_key_sql(table: Table, alias: str = "r") -> str:
    """SQL text of a row's record key, e.g. ``order_id=O1|line_no=2`` (``col:null`` if null)."""
    parts = [
        f"coalesce('{k}=' || cast({alias}.{k} as varchar), '{k}:null')" for k in table.primary_key
    ]
    return parts[0] if len(parts) == 1 else "concat_ws('|', " + ", ".join(parts) + ")"


def rejected_rows_of(table: Table) -> str:
    """SQL text: ``raw_meta.rejected_rows x where <the rows of table>`` (extend with ``and``)."""
    return f"{REJECTED_ROWS} x where x.system = '{table.system}' and x.table_name = '{table.name}'"


def rejected_value_sql(column: str, alias: str = "x") -> str:
    """SQL text of a column's value (as text) in a rejected row of ``raw_meta.rejected_rows``."""
    return f"json_extract_string({alias}.row_json, '$.{column}')"


def raw_table_ddl(table: Table) -> str:
    columns = [f"{c.name} {DUCKDB_TYPES[c.type]}" for c in table.columns]
    columns += ["_run_id varchar", "_loaded_at timestamp"]
    return f"create table if not exists {raw_table_name(table)} ({', '.join(columns)})"


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every raw table of the contract (empty) and the raw_meta tables, if missing."""
    for schema in sorted({raw_schema_name(t.system) for t in TABLES} | {"raw_meta"}):
        con.execute(f"create schema if not exists {schema}")
    for table in TABLES:
        con.execute(raw_table_ddl(table))
        # dbt reads valid_<system>.<table>; pipelines.gate.quarantine replaces these
        # pass-through views with raw-minus-quarantined ones.
        con.execute(f"create schema if not exists valid_{table.system}")
        con.execute(
            f"create view if not exists valid_{table.system}.{table.name} as "
            f"select * from {raw_table_name(table)}"
        )
    con.execute(
        """
        create table if not exists raw_meta.watermarks (
            system varchar, table_name varchar, column_name varchar,
            watermark timestamp, run_id varchar, updated_at timestamp,
            primary key (system, table_name)
        )
        """
    )
    # Rows read from a source with a value that cannot be read as its contract type
    # (pipelines.extract.base.UNREADABLE). They are not in the raw tables; pipelines.gate.quarantine
    # puts them in audit.quarantine (rule unreadable_value). Kept across runs, since the
    # watermark moves past them; a row read again (fixed or not) replaces its entry.
    con.execute(
        """
        create table if not exists raw_meta.rejected_rows (
            system varchar, table_name varchar, record_key varchar,
            columns varchar, row_json varchar, run_id varchar, rejected_at timestamp
        )
        """
    )
    # Rows whose key was read more than once in one extraction (a source without
    # constraints) are kept here too, every copy, with rule 'duplicate_key' (null: an
    # unreadable value); the quarantine reports them under that rule.
    con.execute("alter table raw_meta.rejected_rows add column if not exists rule varchar")
    # Rows removed from the raw layer because their key is gone from the source (key
    # reconciliation, full reads): the row as it was stored, for the audit.
    con.execute(
        f"""
        create table if not exists {DELETED_ROWS} (
            system varchar, table_name varchar, record_key varchar, row_json varchar,
            run_id varchar, deleted_at timestamp
        )
        """
    )
    # when each table's keys were last reconciled with its source (deletes detected)
    con.execute(
        """
        create table if not exists raw_meta.reconciliations (
            system varchar, table_name varchar, reconciled_at timestamp, run_id varchar,
            primary key (system, table_name)
        )
        """
    )
    con.execute(
        """
        create table if not exists raw_meta.source_systems (
            system varchar primary key, configured boolean, source varchar, checked_at timestamp
        )
        """
    )
