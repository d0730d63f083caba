"""Publish the work DB's ``marts`` (+ ``audit``) schemas to a PostgreSQL warehouse.

How a publish works (one run, one database connection):

1. Validate every name that comes from settings (schemas, BI role) before any SQL.
2. Read the work DuckDB READ_ONLY; stream each table as Arrow batches rendered to
   CSV into ``COPY ... FROM STDIN`` (bounded memory), into a fresh schema
   ``<schema>__new_<run8>`` with PostgreSQL types mapped from the DuckDB types.
   ``marts`` also gets ``publish_info`` (one row: run_id, as_of_date, published_at,
   ...) and ``publish_tables`` (rows per table), as in the DuckDB warehouse. A schema
   absent from the work DB is published empty. The DuckDB file is closed after the load.
3. Audit: every table in the new schema has the work DB's row and column counts.
4. Swap: ``SET LOCAL lock_timeout``; rename ``<schema>`` -> ``<schema>__old_<run8>``
   and ``<schema>__new_<run8>`` -> ``<schema>``; grant USAGE on the schema and
   SELECT on its tables to the BI role (grants made with default privileges do not
   survive a rename, so they are made here); revoke the BI role's access to the
   old schema. On SQLSTATE 55P03 (lock_not_available) the swap is rolled back to
   its savepoint and retried with exponential backoff, ``retries`` times.
5. Drop the previous versions in separate short transactions
   (:func:`drop_previous_versions`): a reader in a long transaction blocks the
   drop (not the rename), so a drop that times out is logged and left for the
   next publish.

Steps 2-4 run in ONE PostgreSQL transaction: the new schema is invisible to every
other session (the BI role included) until the swap commits, and any failure
before the swap - or a killed process - rolls it back, leaving the published
schemas untouched and no half-built schema behind. Only the swap itself takes
locks that others can see, and it holds them for milliseconds (the load holds
locks only on objects nobody else can see).

Concurrent publishes to one database are serialised by a transaction-level
advisory lock taken at the start of the swap (it obeys ``lock_timeout`` too).

The BI role is created (NOLOGIN) if missing. People and tools log in with their
own login role that inherits from it, e.g.::

    CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE kam_bi;

It needs CONNECT on the database (PUBLIC has it by default) and gets USAGE +
SELECT on the published schemas only: it cannot write, and it has no grant on any
``__new_`` or ``__old_`` schema. Since PostgreSQL 15 PUBLIC cannot create objects
in schema ``public``; on older servers revoke that from PUBLIC yourself
(``REVOKE CREATE ON SCHEMA public FROM PUBLIC``) - it is not done here because it
affects every role.

Readers running in READ COMMITTED (the default) see the new version from their next
statement; a REPEATABLE READ/SERIALIZABLE transaction opened before the swap keeps
its snapshot and sees the new tables as empty: BI tools should not hold such
transactions across a publish.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from pipelines.identifiers import validate_role_name, validate_schema_name
from pipelines.publish import (
    INFO_SCHEMA,
    INFO_TABLE,
    INFO_TABLES_TABLE,
    PublishError,
    PublishResult,
)
from pipelines.sources import mask_url

__all__ = [
    "PublishError",
    "PublishResult",
    "drop_previous_versions",
    "mask_url",
    "pg_type_for",
    "publish_postgres",
]

logger = logging.getLogger(__name__)

LOCK_NOT_AVAILABLE = "55P03"
NEW_INFIX = "__new_"
OLD_INFIX = "__old_"
#: rows per Arrow batch read from DuckDB (one batch is rendered to CSV at a time)
BATCH_ROWS = 65_536
#: bytes handed to PostgreSQL per COPY data message
COPY_CHUNK_BYTES = 1 << 20
_ADVISORY_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('kam.publish_postgres'))"
_SWAP_SAVEPOINT = "kam_swap"
_MAX_BACKOFF_S = 5.0


# --------------------------------------------------------------------------- helpers


def _scrub(message: str, url: str) -> str:
    """Remove the URL's password from ``message`` wherever it appears."""
    match = re.search(r"://[^:/@\s]*:([^@\s]*)@", url)
    if match and match.group(1):
        message = message.replace(match.group(1), "***")
    return mask_url(message)


def _connect(pg_url: str) -> Any:
    """A psycopg2 connection for a ``postgresql[+driver]://`` URL; errors are masked."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(pg_url)
        if not url.drivername.startswith("postgresql"):
            raise ValueError(f"not a postgresql:// URL (driver {url.drivername!r})")
        params: dict[str, Any] = {"connect_timeout": 10, "application_name": "kam-publish"}
        params.update({k: v for k, v in url.query.items() if isinstance(v, str)})
        params.update(
            {
                "host": url.host or "127.0.0.1",
                "port": url.port or 5432,
                "user": url.username,
                "password": url.password,
                "dbname": url.database,
            }
        )
        return psycopg2.connect(**{k: v for k, v in params.items() if v is not None})
    except Exception as exc:
        detail = _scrub(f"{type(exc).__name__}: {exc}".strip(), pg_url)
        raise PublishError(f"cannot connect to {mask_url(pg_url)}: {detail}") from None


def _run_suffix(run_id: str) -> str:
    """The ``run8`` suffix: first 8 lower-case alphanumerics of the run id."""
    suffix = re.sub(r"[^a-z0-9]", "", str(run_id).lower())[:8]
    if not suffix:
        raise ValueError(f"run_id {run_id!r} has no letters or digits to name a schema version")
    return suffix


def _validate_schemas(schemas: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(schemas, str):
        schemas = (schemas,)
    names = tuple(validate_schema_name(s, "schemas") for s in schemas)
    if not names:
        raise ValueError("schemas: at least one schema to publish is required")
    if len(set(names)) != len(names):
        raise ValueError(f"schemas: duplicate schema names in {names!r}")
    for name in names:
        # room for "__old_" + 8 characters within PostgreSQL's 63-character limit
        if len(name) > 63 - len(OLD_INFIX) - 8:
            raise ValueError(f"schemas: schema name {name!r} is too long (at most 49 characters)")
        if NEW_INFIX in name or OLD_INFIX in name:
            raise ValueError(f"schemas: schema name {name!r} must not contain __new_/__old_")
    return names


# --------------------------------------------------------------------------- types

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
class _Column:
    name: str
    duckdb_type: str
    pg_type: str
    export: str


@dataclass(frozen=True)
class _TablePlan:
    schema: str
    name: str
    columns: tuple[_Column, ...]
    rows: int


def _quote_duck(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plan_schema(con: duckdb.DuckDBPyConnection, schema: str) -> list[_TablePlan]:
    """Tables (and views) of ``schema`` in the work DB with their columns and row counts."""
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
        columns = tuple(_Column(n, t, *pg_type_for(t)) for n, t in cols)
        rows = con.execute(f"select count(*) from {_quote_duck(schema)}.{_quote_duck(table)}")
        plans.append(_TablePlan(schema, table, columns, int(rows.fetchall()[0][0])))
    return plans


def _export_sql(plan: _TablePlan) -> str:
    exprs = []
    for col in plan.columns:
        q = _quote_duck(col.name)
        if col.export == "text":
            exprs.append(f"cast({q} as varchar) as {q}")
        elif col.export == "bytea":
            exprs.append(f"'\\x' || hex({q}) as {q}")
        else:
            exprs.append(q)
    select_list = ", ".join(exprs) if exprs else "null"
    return f"select {select_list} from {_quote_duck(plan.schema)}.{_quote_duck(plan.name)}"


# --------------------------------------------------------------------------- load


class _CsvStream:
    """File-like ``read(size)`` over Arrow batches rendered to CSV, one batch at a time."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self._chunk = memoryview(b"")
        self._offset = 0
        self.rows = 0
        self._options = pacsv.WriteOptions(include_header=False)

    def read(self, size: int = -1) -> bytes:
        while self._offset >= len(self._chunk):
            batch = next(self._batches, None)
            if batch is None:
                return b""
            if batch.num_rows == 0:
                continue
            sink = pa.BufferOutputStream()
            pacsv.write_csv(batch, sink, self._options)
            self.rows += batch.num_rows
            self._chunk = memoryview(sink.getvalue().to_pybytes())
            self._offset = 0
        end = len(self._chunk) if size is None or size < 0 else self._offset + size
        data = self._chunk[self._offset : end].tobytes()
        self._offset += len(data)
        return data


def _create_table(cur: Any, target_schema: str, plan: _TablePlan) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in plan.columns
    )
    cur.execute(
        sql.SQL("CREATE TABLE {}.{} ({})").format(
            sql.Identifier(target_schema), sql.Identifier(plan.name), columns
        )
    )


def _copy_table(
    cur: Any, duck: duckdb.DuckDBPyConnection, target_schema: str, plan: _TablePlan
) -> int:
    """Create ``target_schema.<table>`` and stream the work DB table into it; rows copied."""
    _create_table(cur, target_schema, plan)
    if not plan.columns:
        return 0
    reader = duck.sql(_export_sql(plan)).to_arrow_reader(BATCH_ROWS)
    try:
        stream = _CsvStream(iter(reader))
        copy = sql.SQL("COPY {}.{} ({}) FROM STDIN WITH (FORMAT csv)").format(
            sql.Identifier(target_schema),
            sql.Identifier(plan.name),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in plan.columns),
        )
        cur.copy_expert(copy.as_string(cur), stream, size=COPY_CHUNK_BYTES)
    finally:
        reader.close()
    return stream.rows


def _audit(
    cur: Any, target_schema: str, plans: Sequence[_TablePlan], extra: Iterable[str] = ()
) -> None:
    """Row and column counts of the new schema equal the work DB's; no other tables."""
    cur.execute(
        "SELECT c.relname, (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid "
        "AND a.attnum > 0 AND NOT a.attisdropped) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
        (target_schema,),
    )
    actual_columns = dict(cur.fetchall())
    expected = {p.name for p in plans} | set(extra)
    if set(actual_columns) != expected:
        raise PublishError(
            f"audit of {target_schema}: tables {sorted(actual_columns)} != {sorted(expected)}"
        )
    for plan in plans:
        cur.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(target_schema), sql.Identifier(plan.name)
            )
        )
        rows = cur.fetchone()[0]
        if rows != plan.rows or actual_columns[plan.name] != len(plan.columns):
            raise PublishError(
                f"audit of {target_schema}.{plan.name}: {rows} rows x "
                f"{actual_columns[plan.name]} columns in PostgreSQL, work DB has "
                f"{plan.rows} rows x {len(plan.columns)} columns"
            )


def _write_publish_info(
    cur: Any, target_schema: str, tables: dict[str, int], run_id: str, as_of_date: date
) -> None:
    """``publish_info`` (one row) and ``publish_tables`` (one row per table), with the
    same columns as the DuckDB warehouse (``storage_version`` holds the server version;
    ``published_at`` is UTC)."""
    info = sql.SQL("{}.{}").format(sql.Identifier(target_schema), sql.Identifier(INFO_TABLE))
    cur.execute(
        sql.SQL(
            "CREATE TABLE {} (run_id text NOT NULL, as_of_date date NOT NULL, "
            "published_at timestamp NOT NULL, storage_version text NOT NULL, "
            "table_count integer NOT NULL, tables_json text NOT NULL)"
        ).format(info)
    )
    cur.execute(
        sql.SQL(
            "INSERT INTO {} VALUES (%s, %s, clock_timestamp() AT TIME ZONE 'UTC', "
            "'postgresql ' || current_setting('server_version'), %s, %s)"
        ).format(info),
        (run_id, as_of_date, len(tables), json.dumps(tables, sort_keys=True)),
    )
    per_table = sql.SQL("{}.{}").format(
        sql.Identifier(target_schema), sql.Identifier(INFO_TABLES_TABLE)
    )
    cur.execute(
        sql.SQL(
            "CREATE TABLE {} (schema_name text NOT NULL, table_name text NOT NULL, "
            "row_count bigint NOT NULL)"
        ).format(per_table)
    )
    for qualified, rows in sorted(tables.items()):
        schema, name = qualified.split(".", 1)
        cur.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s)").format(per_table), (schema, name, rows)
        )


# --------------------------------------------------------------------------- role & swap


def _ensure_role(conn: Any, role: str) -> None:
    """Create the BI role (NOLOGIN) if it does not exist; its own short transaction."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if cur.fetchone() is None:
            try:
                cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                logger.info("created BI role %s (NOLOGIN)", role)
            except (psycopg2.errors.DuplicateObject, psycopg2.errors.UniqueViolation):
                conn.rollback()  # created concurrently by another publish: fine
                return
    conn.commit()


def _quiet_rollback(conn: Any) -> None:
    with contextlib.suppress(psycopg2.Error):  # connection gone: the server rolled back
        conn.rollback()


def _schema_exists(cur: Any, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,))
    return cur.fetchone() is not None


def _swap_once(
    cur: Any, schemas: Sequence[str], run8: str, bi_role: str, lock_timeout_ms: int
) -> list[str]:
    cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{lock_timeout_ms}ms")))
    cur.execute(_ADVISORY_LOCK_SQL)
    role = sql.Identifier(bi_role)
    retired = []
    for schema in schemas:
        if _schema_exists(cur, schema):
            old = f"{schema}{OLD_INFIX}{run8}"
            while _schema_exists(cur, old):  # same run published twice: pick a free name
                old = f"{schema}{OLD_INFIX}{secrets.token_hex(4)}"
            cur.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(schema), sql.Identifier(old)
                )
            )
            cur.execute(
                sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(sql.Identifier(old), role)
            )
            retired.append(old)
        cur.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(f"{schema}{NEW_INFIX}{run8}"), sql.Identifier(schema)
            )
        )
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
        cur.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                sql.Identifier(schema), role
            )
        )
    return retired


def _swap(
    cur: Any,
    schemas: Sequence[str],
    run8: str,
    bi_role: str,
    lock_timeout_ms: int,
    retries: int,
) -> list[str]:
    """Swap the new schemas in, retrying on lock timeouts; returns the retired names."""
    for attempt in range(retries + 1):
        cur.execute(f"SAVEPOINT {_SWAP_SAVEPOINT}")
        try:
            retired = _swap_once(cur, schemas, run8, bi_role, lock_timeout_ms)
        except psycopg2.errors.LockNotAvailable as exc:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_SWAP_SAVEPOINT}")
            if attempt >= retries:
                raise PublishError(
                    f"schema swap still blocked after {attempt + 1} attempts "
                    f"(lock_timeout {lock_timeout_ms} ms): {exc.pgerror or exc}".strip()
                ) from exc
            delay = min(_MAX_BACKOFF_S, 0.1 * 2**attempt) * (1 + random.random() / 2)
            logger.warning(
                "schema swap attempt %d/%d blocked (SQLSTATE %s), retrying in %.2f s",
                attempt + 1,
                retries + 1,
                exc.pgcode,
                delay,
            )
            time.sleep(delay)
            continue
        cur.execute(f"RELEASE SAVEPOINT {_SWAP_SAVEPOINT}")
        if attempt:
            logger.info("schema swap succeeded on attempt %d", attempt + 1)
        return retired
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- public API


def publish_postgres(
    work_db: Path,
    pg_url: str,
    run_id: str,
    as_of: str,
    schemas: Sequence[str] = ("marts", "audit"),
    bi_role: str = "kam_bi",
    lock_timeout_ms: int = 2000,
    retries: int = 5,
) -> PublishResult:
    """Publish ``schemas`` of the work DuckDB to PostgreSQL by schema swap.

    Returns a :class:`PublishResult` whose ``tables`` maps ``schema.table`` to rows
    and whose ``version`` is the run suffix used in the schema names. Raises
    ``ValueError`` for bad arguments (before any SQL) and :class:`PublishError`
    when the publish fails; in every failure case the published schemas are
    unchanged. Failing to drop previous versions afterwards is only logged.
    """
    started = time.perf_counter()
    names = _validate_schemas(schemas)
    bi_role = validate_role_name(bi_role, "bi_role")
    as_of_date = date.fromisoformat(str(as_of))
    run8 = _run_suffix(run_id)
    if int(lock_timeout_ms) < 1 or int(retries) < 0:
        raise ValueError("lock_timeout_ms must be >= 1 and retries >= 0")
    work_db = Path(work_db)
    if not work_db.is_file():
        raise FileNotFoundError(f"work DB not found: {work_db}")
    target = mask_url(pg_url)

    duck = duckdb.connect(str(work_db), read_only=True)
    try:
        plans = {schema: _plan_schema(duck, schema) for schema in names}
        if not any(plans.values()):
            raise PublishError(f"no tables in schemas {names} of {work_db}: nothing to publish")
        conn = _connect(pg_url)
    except BaseException:
        duck.close()
        raise
    tables: dict[str, int] = {}
    try:
        try:
            _ensure_role(conn, bi_role)
            with conn.cursor() as cur:
                for schema in names:
                    new = f"{schema}{NEW_INFIX}{run8}"
                    cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(new)))
                    for plan in plans[schema]:
                        rows = _copy_table(cur, duck, new, plan)
                        if rows != plan.rows:
                            raise PublishError(
                                f"{schema}.{plan.name}: streamed {rows} rows, expected {plan.rows}"
                            )
                        tables[f"{schema}.{plan.name}"] = rows
                duck.close()
                info_schema = INFO_SCHEMA if INFO_SCHEMA in names else names[0]
                for schema in names:
                    new = f"{schema}{NEW_INFIX}{run8}"
                    extra: tuple[str, ...] = ()
                    if schema == info_schema:
                        _write_publish_info(cur, new, tables, run_id, as_of_date)
                        extra = (INFO_TABLE, INFO_TABLES_TABLE)
                    _audit(cur, new, plans[schema], extra)
                retired = _swap(cur, names, run8, bi_role, int(lock_timeout_ms), int(retries))
            conn.commit()
        except BaseException:
            _quiet_rollback(conn)
            raise
    except psycopg2.Error as exc:
        message = _scrub(f"{type(exc).__name__}: {exc}".strip(), pg_url)
        raise PublishError(f"publish to {target} failed, nothing changed: {message}") from exc
    finally:
        duck.close()
        conn.close()
    logger.info(
        "published %s to %s as version %s (%d tables, %d rows); retired %s",
        ", ".join(names),
        target,
        run8,
        len(tables),
        sum(tables.values()),
        retired or "nothing",
    )
    try:
        drop_previous_versions(pg_url, names, lock_timeout_ms=int(lock_timeout_ms))
    except Exception as exc:  # cleanup is best effort: the next publish retries it
        logger.warning("could not drop previous versions (left for next time): %s", exc)
    return PublishResult(
        target=target, tables=tables, seconds=time.perf_counter() - started, version=run8
    )


def drop_previous_versions(
    pg_url: str, schemas: Sequence[str] = ("marts", "audit"), lock_timeout_ms: int = 2000
) -> list[str]:
    """Drop retired ``<schema>__old_*`` schemas, each in its own short transaction.

    A schema still read by a long transaction cannot be dropped within
    ``lock_timeout_ms``: it is logged and left for the next call. Returns the
    names actually dropped.
    """
    names = _validate_schemas(schemas)
    if int(lock_timeout_ms) < 1:
        raise ValueError("lock_timeout_ms must be >= 1")
    pattern = re.compile(
        "^(" + "|".join(re.escape(n) for n in names) + ")" + re.escape(OLD_INFIX) + "[a-z0-9]+$"
    )
    dropped: list[str] = []
    conn = _connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT nspname FROM pg_namespace ORDER BY nspname")
            candidates = [r[0] for r in cur.fetchall() if pattern.match(r[0])]
            conn.commit()
            for name in candidates:
                try:
                    cur.execute(
                        sql.SQL("SET LOCAL lock_timeout = {}").format(
                            sql.Literal(f"{int(lock_timeout_ms)}ms")
                        )
                    )
                    cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
                    conn.commit()
                    dropped.append(name)
                except psycopg2.errors.LockNotAvailable:
                    conn.rollback()
                    logger.warning("schema %s is still in use; left for the next cleanup", name)
                except psycopg2.errors.InvalidSchemaName:
                    conn.rollback()  # dropped concurrently
    finally:
        conn.close()
    return dropped
