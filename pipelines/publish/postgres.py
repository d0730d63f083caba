"""Publish the work DB's ``marts`` (+ ``audit``) schemas to a PostgreSQL warehouse.

How a publish works (one run, one database connection):

1. Validate every name that comes from settings (schemas, prefix, BI role) before any SQL.
2. Read the work DuckDB READ_ONLY; stream each table as Arrow batches rendered to
   CSV into ``COPY ... FROM STDIN`` (bounded memory), into a fresh schema
   ``<schema>__new_<run8>`` with PostgreSQL types mapped from the DuckDB types.
   ``marts`` also gets ``publish_info`` (one row: run_id, as_of_date, published_at,
   ...) and ``publish_tables`` (rows per table), as in the DuckDB warehouse. A schema
   absent from the work DB is published empty. The DuckDB file is closed after the load.
3. Audit: every table in the new schema has the work DB's row and column counts.
4. Swap: ``SET LOCAL lock_timeout``; refuse (nothing changed) when a target schema exists
   and is not kam's (:mod:`pipelines.publish.ownership`: each published schema carries a
   marker comment); rename ``<schema>`` -> ``<schema>__old_<run8>``
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
SELECT on ``marts`` only (``audit`` holds source rows as JSON: it goes to the audit role,
``KAM_AUDIT_ROLE``, created NOLOGIN the same way): it cannot write, and it has no grant on any
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

import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from pipelines.identifiers import validate_role_name
from pipelines.publish.comments import (
    INFO_COMMENTS,
    Comments,
    apply_comments,
    describe,
    read_duckdb_comments,
)
from pipelines.publish.ownership import SCHEMA_MARKER
from pipelines.publish.pg import connect_warehouse
from pipelines.publish.postgres_indexes import create_indexes
from pipelines.publish.postgres_swap import (
    NEW_INFIX,
    drop_previous_versions,
    ensure_role,
    quiet_rollback,
    swap,
    validate_schemas,
)
from pipelines.publish.postgres_types import TablePlan, plan_schema, quote_duck
from pipelines.publish.publish_info import (
    INFO_SCHEMA,
    INFO_TABLE,
    INFO_TABLES_TABLE,
    SCORE_REPORT,
    as_of_filter,
    score_version_query,
    write_publish_info,
)
from pipelines.publish.result import PublishError, PublishResult
from pipelines.secrets import mask_text, mask_url, url_secrets

logger = logging.getLogger(__name__)

#: the schema of raw source rows (quarantine, deleted rows): never granted to the BI role
AUDIT_SCHEMA = "audit"
#: rows per Arrow batch read from DuckDB (one batch is rendered to CSV at a time)
BATCH_ROWS = 65_536
#: bytes handed to PostgreSQL per COPY data message
COPY_CHUNK_BYTES = 1 << 20


def _run_suffix(run_id: str) -> str:
    """The ``run8`` suffix: first 8 lower-case alphanumerics of the run id."""
    suffix = re.sub(r"[^a-z0-9]", "", str(run_id).lower())[:8]
    if not suffix:
        raise ValueError(f"run_id {run_id!r} has no letters or digits to name a schema version")
    return suffix


def _export_sql(plan: TablePlan) -> str:
    exprs = []
    for col in plan.columns:
        q = quote_duck(col.name)
        if col.export == "text":
            exprs.append(f"cast({q} as varchar) as {q}")
        elif col.export == "bytea":
            exprs.append(f"'\\x' || hex({q}) as {q}")
        else:
            exprs.append(q)
    select_list = ", ".join(exprs) if exprs else "null"
    return (
        f"select {select_list} from {quote_duck(plan.schema)}.{quote_duck(plan.name)}{plan.where}"
    )


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


def _create_table(cur: Any, target_schema: str, plan: TablePlan) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in plan.columns
    )
    cur.execute(
        sql.SQL("CREATE TABLE {}.{} ({})").format(
            sql.Identifier(target_schema), sql.Identifier(plan.name), columns
        )
    )


def _copy_table(
    cur: Any, duck: duckdb.DuckDBPyConnection, target_schema: str, plan: TablePlan
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
    cur: Any, target_schema: str, plans: Sequence[TablePlan], extra: Iterable[str] = ()
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


def _publish_info(
    cur: Any,
    target_schema: str,
    tables: dict[str, int],
    run_id: str,
    as_of_date: date,
    report_schema: str | None = None,
) -> None:
    """The publish-info tables, stamped with the server's UTC clock and version."""
    cur.execute("SELECT clock_timestamp(), 'postgresql ' || current_setting('server_version')")
    published_at, storage_version = cur.fetchone()
    schema = sql.Identifier(target_schema).as_string(cur)
    score_version = None
    if ".".join(SCORE_REPORT) in tables and report_schema is not None:
        report = sql.SQL("{}.{}").format(
            sql.Identifier(report_schema), sql.Identifier(SCORE_REPORT[1])
        )
        cur.execute(score_version_query(report.as_string(cur)))
        score_version = cur.fetchone()[0]
    write_publish_info(
        cur.execute,
        schema,
        tables,
        run_id,
        as_of_date,
        published_at,
        storage_version,
        "%s",
        score_version=score_version,
    )


def _work_comments(duck: duckdb.DuckDBPyConnection, names: Sequence[str]) -> dict:
    database = str(duck.execute("select current_database()").fetchall()[0][0])
    return read_duckdb_comments(duck, database, names)


def _describe_and_index(
    cur: Any,
    schema: str,
    new: str,
    plans: Sequence[TablePlan],
    comments: dict[tuple[str, str], Comments],
    extra: Sequence[str],
) -> None:
    """COMMENT ON the new schema's tables (dbt descriptions) and index the marts' keys."""
    published = {(schema, p.name): {c.name for c in p.columns} for p in plans}
    for table in extra:  # publish_info / publish_tables, written here
        published[(schema, table)] = set(INFO_COMMENTS.get((schema, table), Comments()).columns)
    quote = lambda name: sql.Identifier(name).as_string(cur)  # noqa: E731
    mine = describe(comments, published)
    apply_comments(cur.execute, mine, lambda _s, t: f"{quote(new)}.{quote(t)}", quote)
    create_indexes(cur, new, {p.name: [c.name for c in p.columns] for p in plans})


def publish_postgres(
    work_db: Path,
    pg_url: str,
    run_id: str,
    as_of: date,
    schemas: Sequence[str] = ("marts", "audit"),
    bi_role: str = "kam_bi",
    lock_timeout_ms: int = 2000,
    retries: int = 5,
    schema_prefix: str = "",
    audit_role: str = "kam_audit",
) -> PublishResult:
    """Publish ``schemas`` of the work DuckDB to PostgreSQL by schema swap.

    Returns a :class:`PublishResult` whose ``tables`` maps ``schema.table`` to rows
    and whose ``version`` is the run suffix used in the schema names. Raises
    ``ValueError`` for bad arguments (before any SQL) and :class:`PublishError`
    when the publish fails; in every failure case the published schemas are
    unchanged. Failing to drop previous versions afterwards is only logged.

    Work DB schema ``s`` is published as PostgreSQL schema ``schema_prefix + s``. A target
    schema that exists and was not published by kam is never replaced: the publish
    raises :class:`PublishError` naming it (see :mod:`pipelines.publish.ownership`).
    """
    started = time.perf_counter()
    names = validate_schemas(schemas)
    targets = validate_schemas([f"{schema_prefix}{name}" for name in names])
    target_of = dict(zip(names, targets, strict=True))
    bi_role = validate_role_name(bi_role, "bi_role")
    audit_role = validate_role_name(audit_role, "audit_role")
    if not isinstance(as_of, date):  # parsed once at the boundary, never here
        raise ValueError(f"as_of must be a date, got {as_of!r}")
    as_of_date = as_of
    run8 = _run_suffix(run_id)
    if int(lock_timeout_ms) < 1 or int(retries) < 0:
        raise ValueError("lock_timeout_ms must be >= 1 and retries >= 0")
    work_db = Path(work_db)
    if not work_db.is_file():
        raise FileNotFoundError(f"work DB not found: {work_db}")
    target = mask_url(pg_url)

    duck = duckdb.connect(str(work_db), read_only=True)
    try:
        plans = {
            schema: plan_schema(duck, schema, lambda s, t: as_of_filter(s, t, as_of_date))
            for schema in names
        }
        comments = _work_comments(duck, names)
        if not any(plans.values()):
            raise PublishError(f"no tables in schemas {names} of {work_db}: nothing to publish")
        conn = connect_warehouse(pg_url)
    except BaseException:
        duck.close()
        raise
    tables: dict[str, int] = {}
    try:
        try:
            ensure_role(conn, bi_role)
            ensure_role(conn, audit_role)
            with conn.cursor() as cur:
                for schema in names:
                    new = f"{target_of[schema]}{NEW_INFIX}{run8}"
                    cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(new)))
                    cur.execute(
                        sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                            sql.Identifier(new), sql.Literal(SCHEMA_MARKER)
                        )
                    )
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
                    new = f"{target_of[schema]}{NEW_INFIX}{run8}"
                    extra: tuple[str, ...] = ()
                    if schema == info_schema:
                        report_schema = (
                            f"{target_of[SCORE_REPORT[0]]}{NEW_INFIX}{run8}"
                            if SCORE_REPORT[0] in target_of
                            else None
                        )
                        _publish_info(cur, new, tables, run_id, as_of_date, report_schema)
                        extra = (INFO_TABLE, INFO_TABLES_TABLE)
                    _describe_and_index(cur, schema, new, plans[schema], comments, extra)
                    _audit(cur, new, plans[schema], extra)
                retired = swap(
                    cur,
                    targets,
                    run8,
                    bi_role,
                    int(lock_timeout_ms),
                    int(retries),
                    info_target=target_of[info_schema],
                    readers={
                        target_of[s]: (audit_role if s == AUDIT_SCHEMA else bi_role) for s in names
                    },
                )
            conn.commit()
        except BaseException:
            quiet_rollback(conn)
            raise
    except psycopg2.Error as exc:
        message = mask_text(f"{type(exc).__name__}: {exc}".strip(), url_secrets(pg_url))
        raise PublishError(f"publish to {target} failed, nothing changed: {message}") from exc
    finally:
        duck.close()
        conn.close()
    logger.info(
        "published %s to %s as version %s (%d tables, %d rows); retired %s",
        ", ".join(targets),
        target,
        run8,
        len(tables),
        sum(tables.values()),
        retired or "nothing",
    )
    try:
        drop_previous_versions(pg_url, targets, lock_timeout_ms=int(lock_timeout_ms))
    except Exception as exc:  # cleanup is best effort: the next publish retries it
        logger.warning("could not drop previous versions (left for next time): %s", exc)
    return PublishResult(
        target=target, tables=tables, seconds=time.perf_counter() - started, version=run8
    )
