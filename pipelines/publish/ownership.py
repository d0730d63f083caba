"""What the warehouse owns: only the schemas and files kam itself published.

A publish replaces its targets (a PostgreSQL schema swap drops the previous version with
CASCADE; a DuckDB publish replaces the file), so before it touches one it checks that the
target is kam's, and refuses otherwise - a foreign ``audit`` schema of audit triggers, a
``marts`` schema of another team, a DuckDB file that is not a kam warehouse, the work DB
itself or a folder at ``KAM_WAREHOUSE`` are never destroyed.

* PostgreSQL: every schema kam publishes carries the comment :data:`SCHEMA_MARKER`
  (``COMMENT ON SCHEMA``; the comment follows the schema through the rename of the swap).
  Warehouses published before the marker existed are recognised by their content: the
  ``marts`` schema holds kam's ``publish_info`` and ``publish_tables``, and every table
  of another published schema is listed in that ``publish_tables`` (a foreign table is
  not), with no functions of its own.
* DuckDB: a kam warehouse file is a DuckDB database with ``marts.publish_info``.

The checks run in the preflight (``kam check``, ``kam run``: exit 2 naming the target
and the setting to change) and again in the publishers, just before they replace
anything (the database may have changed since).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: the comment on every PostgreSQL schema kam publishes
SCHEMA_MARKER = "kam warehouse schema: published and replaced by kam at every publish"
#: first bytes of a DuckDB database file: 8 bytes of checksum, then the magic
_DUCKDB_MAGIC = b"DUCK"
_INFO_SCHEMA = "marts"
_INFO_TABLE = "publish_info"
_INFO_TABLES_TABLE = "publish_tables"

_FIX_PG = (
    "rename or move that schema, point KAM_WAREHOUSE at another database, "
    "or set KAM_PG_SCHEMA_PREFIX so that kam publishes to other schema names"
)


def _schema_comment(cur: Any, name: str) -> tuple[bool, str | None]:
    """(exists, comment) of schema ``name``."""
    cur.execute(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = %s",
        (name,),
    )
    row = cur.fetchone()
    return (row is not None, row[0] if row else None)


def _tables(cur: Any, schema: str) -> set[str]:
    cur.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'p', 'f')",
        (schema,),
    )
    return {r[0] for r in cur.fetchall()}


def _functions(cur: Any, schema: str) -> int:
    cur.execute(
        "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = %s",
        (schema,),
    )
    return int(cur.fetchone()[0])


def _legacy_published(cur: Any, info_schema: str) -> dict[str, set[str]] | None:
    """Tables per schema recorded by a kam publish made before the marker, or None when
    ``info_schema`` does not look like kam's (no publish_info with its columns)."""
    tables = _tables(cur, info_schema)
    if not {_INFO_TABLE, _INFO_TABLES_TABLE} <= tables:
        return None
    cur.execute(
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s",
        (info_schema, _INFO_TABLE),
    )
    if not {"run_id", "as_of_date", "published_at", "tables_json"} <= {
        r[0] for r in cur.fetchall()
    }:
        return None
    cur.execute(f'select schema_name, table_name from "{info_schema}"."{_INFO_TABLES_TABLE}"')
    published: dict[str, set[str]] = {}
    for schema, table in cur.fetchall():
        published.setdefault(str(schema), set()).add(str(table))
    return published


def foreign_pg_schemas(cur: Any, targets: Sequence[str], info_target: str) -> list[str]:
    """Problems naming each existing target schema that kam did not publish (empty: all
    targets are absent or kam's). ``info_target`` is the schema that holds publish_info;
    the published tables it records are named by their source schema (``marts``,
    ``audit``), which is the target name without the prefix."""
    problems: list[str] = []
    legacy: dict[str, set[str]] | None | bool = False  # not read yet
    prefix = info_target[: -len(_INFO_SCHEMA)] if info_target.endswith(_INFO_SCHEMA) else ""
    for target in targets:
        exists, comment = _schema_comment(cur, target)
        if not exists or (comment or "").startswith(SCHEMA_MARKER):
            continue
        if legacy is False:
            legacy = _legacy_published(cur, info_target)
        source = target[len(prefix) :] if prefix and target.startswith(prefix) else target
        own = _tables(cur, target)
        if isinstance(legacy, dict):
            allowed = legacy.get(source, set())
            if target == info_target:
                allowed = allowed | {_INFO_TABLE, _INFO_TABLES_TABLE}
            if own <= allowed and not _functions(cur, target):
                continue  # published by kam before the marker existed
        shown = ", ".join(sorted(own)[:5]) + (" ..." if len(own) > 5 else "")
        problems.append(
            f"PostgreSQL schema {target!r} exists and was not published by kam "
            f"({len(own)} tables{': ' + shown if own else ''}); a publish would replace "
            f"and drop it: {_FIX_PG}"
        )
    return problems


def duckdb_warehouse_problem(warehouse: Path, work_db: Path | None = None) -> str | None:
    """Why ``warehouse`` cannot be the published DuckDB file, or None.

    Refused: a folder, the work DB, an existing file that is not
    a DuckDB database, a DuckDB database without ``marts.publish_info`` (not a kam
    warehouse). A file locked by another process is not refused here: the publish
    replaces it atomically and the lock does not tell whose it is.
    """
    import duckdb

    warehouse = Path(warehouse)
    shown = f"KAM_WAREHOUSE={warehouse}"
    if warehouse.is_dir():
        return f"{shown} is a folder: it must be the path of the DuckDB file to publish"
    if work_db is not None and warehouse.resolve() == Path(work_db).resolve():
        return (
            f"{shown} is the work DB: the warehouse must be a file of its own (the default "
            "is $KAM_DATA_DIR/warehouse/kam.duckdb)"
        )
    if not warehouse.exists():
        return None
    try:
        with warehouse.open("rb") as handle:
            header = handle.read(12)
    except OSError as exc:
        return f"{shown}: cannot read the existing file ({exc.strerror or exc})"
    if len(header) < 12 or header[8:12] != _DUCKDB_MAGIC:
        return (
            f"{shown}: the existing file is not a DuckDB database, a publish would replace "
            "it: move it away or set KAM_WAREHOUSE to another path"
        )
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return None
        return f"{shown}: cannot open the existing DuckDB file ({exc})"
    except duckdb.Error as exc:
        return f"{shown}: cannot open the existing DuckDB file ({exc})"
    try:
        found = con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
            [_INFO_SCHEMA, _INFO_TABLE],
        ).fetchall()[0][0]
    finally:
        con.close()
    if not found:
        return (
            f"{shown}: the existing DuckDB file is not a kam warehouse (no "
            f"{_INFO_SCHEMA}.{_INFO_TABLE}), a publish would replace it: move it away or "
            "set KAM_WAREHOUSE to another path"
        )
    return None
