"""PostgreSQL column types for DuckDB ones, and the plan of what a publish copies."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from pipelines.publish.publish_info import INFO_SCHEMA, INFO_TABLE, INFO_TABLES_TABLE
from pipelines.publish.result import PublishError

logger = logging.getLogger(__name__)

_SIMPLE_TYPES: dict[str, str] = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20,0)",
    "HUGEINT": "numeric(38,0)",
    "UHUGEINT": "numeric(39,0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}


# types whose DuckDB text form PostgreSQL parses: cast to VARCHAR on the way out
_TEXT_CAST_TYPES: dict[str, str] = {
    "UUID": "uuid",
    "INTERVAL": "interval",
    "JSON": "jsonb",
    "TIME WITH TIME ZONE": "timetz",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def pg_type_for(duckdb_type: str) -> tuple[str, str]:
    """Map a DuckDB column type to ``(postgres_type, export_kind)``.

    ``export_kind`` is ``"arrow"`` (exported as is), ``"text"`` (cast to VARCHAR in
    DuckDB) or ``"bytea"`` (hex-encoded). Types with no PostgreSQL equivalent
    (lists, structs, maps, enums, ...) are published as their DuckDB text form.
    """
    t = duckdb_type.strip().upper()
    if t in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[t], "arrow"
    match = _DECIMAL.match(t)
    if match:
        return f"numeric({match.group(1)},{match.group(2)})", "arrow"
    if t in _TEXT_CAST_TYPES:
        return _TEXT_CAST_TYPES[t], "text"
    if t == "BLOB":
        return "bytea", "bytea"
    return "text", "text"


@dataclass(frozen=True)
class PlanColumn:
    name: str
    duckdb_type: str
    pg_type: str
    export: str


@dataclass(frozen=True)
class TablePlan:
    schema: str
    name: str
    columns: tuple[PlanColumn, ...]
    rows: int
    #: SQL ``where`` clause (with the keyword) of the rows published, or ""
    where: str = ""


def quote_duck(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def plan_schema(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    where: Callable[[str, str], str] | None = None,
) -> list[TablePlan]:
    """Tables (and views) of ``schema`` in the work DB with their columns and row counts;
    ``where(schema, table)`` gives the ``where`` clause of the rows to publish."""
    found = con.execute(
        "select count(*) from information_schema.schemata "
        "where catalog_name = current_database() and schema_name = ?",
        [schema],
    ).fetchall()
    if found[0][0] == 0:
        logger.warning("schema %s is not in the work DB: it is published empty", schema)
        return []
    tables = [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_catalog = current_database() and table_schema = ? order by table_name",
            [schema],
        ).fetchall()
    ]
    plans = []
    for table in tables:
        if schema == INFO_SCHEMA and table in (INFO_TABLE, INFO_TABLES_TABLE):
            raise PublishError(f"the work DB must not contain {schema}.{table}")
        cols = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [schema, table],
        ).fetchall()
        columns = tuple(PlanColumn(n, t, *pg_type_for(t)) for n, t in cols)
        cut = where(schema, table) if where else ""
        rows = con.execute(f"select count(*) from {quote_duck(schema)}.{quote_duck(table)}{cut}")
        plans.append(TablePlan(schema, table, columns, int(rows.fetchall()[0][0]), cut))
    return plans
