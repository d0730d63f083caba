"""SQL sources: any SQLAlchemy URL (SQLite, PostgreSQL, MySQL/MariaDB, ...).

SQLite files and PostgreSQL are read by the fast readers of :mod:`fast_sql` (ADBC,
straight into Arrow). Every other source, and a table the fast reader cannot read the
same way, goes the generic way: a streaming cursor (``stream_results``: a server-side
cursor where the dialect has one) and ``fetchmany``, ``chunk_rows`` rows at a time.
Both give the same batches for the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from datetime import datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from pipelines.contract import Column, Table, get_table
from pipelines.extract import fast_sql
from pipelines.extract.base import SAMPLE_VALUES, Source, batch_schema
from pipelines.extract.casting import BadValues, convert_values, unreadable_column
from pipelines.secrets import mask_url

log = logging.getLogger(__name__)

# Driver used for a URL that names none: SQLAlchemy 2.1 defaults postgresql:// to psycopg
# (v3), which is not installed; psycopg2 is.
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg2", "postgres": "postgresql+psycopg2"}


def with_installed_driver(url: str) -> str:
    """The URL with an installed DB-API driver when it names none (postgresql://...)."""
    parsed = make_url(url)
    driver = DEFAULT_DRIVERS.get(parsed.drivername)
    if driver is None:
        return url
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def engine_options(url: str, connect_timeout: float) -> dict[str, Any]:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        # connect_args replace the URL's own query arguments: keep its options
        connect_args = {
            "connect_timeout": max(1, int(connect_timeout)),
            "options": fast_sql.pg_session_options(parsed),
        }
    elif backend in ("mysql", "mariadb"):
        connect_args = {"connect_timeout": max(1, int(connect_timeout))}
    elif backend == "sqlite":
        connect_args = {"timeout": connect_timeout}
    return {"poolclass": NullPool, "connect_args": connect_args}


class SqlSource(Source):
    """A source read through SQLAlchemy (and ADBC where :mod:`fast_sql` can)."""

    def __init__(
        self, system: str, url: str, engine: Engine, connect_timeout: float = 10.0
    ) -> None:
        super().__init__(system, mask_url(url))
        self.engine = engine
        self._dialect = engine.dialect.name
        self._connect_timeout = connect_timeout
        #: False reads every table the generic way (tests compare both ways)
        self.fast_reader = self._dialect in ("sqlite", "postgresql")

    def close(self) -> None:
        self.engine.dispose()

    def _table_names(self) -> dict[str, str]:
        inspector = sa.inspect(self.engine)
        names: dict[str, str] = {}
        for name in [*inspector.get_table_names(), *inspector.get_view_names()]:
            names.setdefault(name, name)
            names.setdefault(name.lower(), name)
        return names

    def _column_names(self, actual_table: str) -> list[str]:
        return [c["name"] for c in sa.inspect(self.engine).get_columns(actual_table)]

    def _count_rows(self, actual_table: str) -> int:
        stmt = sa.select(sa.func.count()).select_from(sa.table(actual_table))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def _sa_table(self, table: Table, alias: str | None = None) -> sa.TableClause:
        actual, mapping = self._resolve(table)
        t = sa.table(actual, *[sa.column(mapping[c]) for c in table.column_names])
        return t.alias(alias) if alias else t

    def _bind_since(self, since: datetime) -> Any:
        # SQLite stores timestamps as text: compare with the same ISO text (inclusive).
        return since.isoformat(sep=" ") if self._dialect == "sqlite" else since

    def _sample(self, table: Table, column: Column) -> tuple[list[Any], list[dict[str, Any]]]:
        _, mapping = self._resolve(table)
        t = self._sa_table(table)
        keys = [t.c[mapping[k]] for k in table.primary_key]
        target = t.c[mapping[column.name]]
        stmt = sa.select(target, *keys).where(target.is_not(None)).limit(SAMPLE_VALUES)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).fetchall()
        values = [r[0] for r in rows]
        key_rows = [dict(zip(table.primary_key, r[1:], strict=True)) for r in rows]
        return values, key_rows

    def _statement(self, table: Table, since: datetime | None) -> sa.Select:
        _, mapping = self._resolve(table)
        if table.parent is not None and since is not None:
            parent = get_table(table.system, table.parent[0])
            key = table.parent[1]
            child = self._sa_table(table, "c")
            par = self._sa_table(parent, "p")
            _, pmap = self._resolve(parent)
            incr = parent.incremental_column
            assert incr is not None, f"parent {parent.name} needs an incremental column"
            # a semi-join, not a join: a parent key sent twice (a source without
            # constraints) must not send its children twice
            changed = sa.select(par.c[pmap[key]]).where(
                par.c[pmap[incr]] >= self._bind_since(since)
            )
            return sa.select(*[child.c[mapping[c]] for c in table.column_names]).where(
                child.c[mapping[key]].in_(changed)
            )
        t = self._sa_table(table)
        stmt = sa.select(*[t.c[mapping[c]] for c in table.column_names])
        if table.incremental_column and since is not None:
            stmt = stmt.where(t.c[mapping[table.incremental_column]] >= self._bind_since(since))
        return stmt

    def _iter_typed(
        self, table: Table, since: datetime | None, chunk_rows: int
    ) -> Iterator[pa.RecordBatch]:
        stmt = self._statement(table, since)
        schema = batch_schema(table)
        fast = self._fast_chunks(stmt, list(table.columns), chunk_rows)
        if fast is not None:
            with closing(fast):  # an early stop closes the reader's connection at once
                for columns, odd in fast:
                    yield fast_sql.contract_batch(table, schema, columns, odd)
            return
        for rows in self._fetch_rows(stmt, chunk_rows):
            yield self._rows_to_batch(table, schema, rows)

    def _iter_key_batches(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        _, mapping = self._resolve(table)
        t = self._sa_table(table)
        keys = [table.column(k) for k in table.primary_key]
        stmt = sa.select(*[t.c[mapping[k.name]] for k in keys])
        fast = self._fast_chunks(stmt, keys, chunk_rows)
        if fast is not None:
            with closing(fast):
                for columns, odd in fast:
                    yield fast_sql.key_batch(keys, columns, odd)
            return
        for rows in self._fetch_rows(stmt, chunk_rows):
            columns = list(zip(*rows, strict=True))
            arrays = [convert_values(columns[i], k)[0] for i, k in enumerate(keys)]
            yield pa.RecordBatch.from_arrays(arrays, names=[k.name for k in keys])

    def _fetch_rows(self, stmt: sa.Select, chunk_rows: int) -> Iterator[Sequence[Any]]:
        """The generic way: DB-API rows from a streaming cursor, ``chunk_rows`` at a time."""
        with self.engine.connect() as conn:
            result = conn.execution_options(
                stream_results=True, max_row_buffer=chunk_rows, yield_per=chunk_rows
            ).execute(stmt)
            try:
                while rows := result.fetchmany(chunk_rows):
                    yield rows
            finally:
                result.close()

    # -- fast readers (fast_sql)
    def _fast_chunks(
        self, stmt: sa.Select, columns: list[Column], chunk_rows: int
    ) -> Iterator[tuple[list[pa.Array], list[dict[int, Any]] | None]] | None:
        """Chunks (columns, odd values) from the fast reader; None: read the generic way.

        The reader is started here, up to its first chunk, so that a source it cannot
        read (no driver, a URL libpq does not take) falls back before any batch is
        yielded; a failure after that is an error, as on the generic path.
        """
        opener = self._fast_opener(stmt, columns, chunk_rows)
        if opener is None:
            return None
        try:
            chunks = opener()
            first = next(chunks, None)
        except Exception as exc:  # noqa: BLE001 - any failure to start: the generic way
            log.warning(
                "%s source %s: fast reader unavailable (%s: %s), reading rows the generic way",
                self.system,
                self.location,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            return None
        return _prepend(first, chunks)

    def _fast_opener(
        self, stmt: sa.Select, columns: list[Column], chunk_rows: int
    ) -> Callable[[], Iterator[tuple[list[pa.Array], list[dict[int, Any]] | None]]] | None:
        if not self.fast_reader or not fast_sql.drivers_available():
            return None
        url = self.engine.url
        if self._dialect == "sqlite":
            path = fast_sql.sqlite_path(url)
            if path is None:
                return None
            fast = fast_sql.sqlite_fast_select(stmt, columns)
            timeout = float(self._connect_timeout)
            width = len(columns)
            return lambda: fast_sql.iter_sqlite(
                path, fast, self.engine.dialect, width, chunk_rows, timeout
            )
        if self._dialect == "postgresql":
            select = self._pg_fast_select(stmt)
            if select is None:
                return None
            sql = fast_sql.inline_sql(select, self.engine.dialect)
            uri = fast_sql.pg_uri(url, self._connect_timeout)
            return lambda: ((cols, None) for cols in fast_sql.iter_postgres(uri, sql, chunk_rows))
        return None

    def _pg_fast_select(self, stmt: sa.Select) -> sa.Select | None:
        """``stmt`` with each column as the fast reader selects it; None when a column's
        type is one it does not read the same way as psycopg2."""
        q = stmt.subquery("q")
        exprs = []
        for out, inner in zip(q.c, stmt.selected_columns, strict=True):
            table_clause = getattr(inner.table, "element", inner.table)  # the table of an alias
            reflected = self._column_types(table_clause.name).get(inner.name)
            expr = None if reflected is None else fast_sql.pg_column_expr(out, reflected)
            if expr is None:
                return None
            exprs.append(expr)
        return sa.select(*exprs).select_from(q)

    def _column_types(self, table_name: str) -> dict[str, Any]:
        cache = self.__dict__.setdefault("_types_cache", {})
        if table_name not in cache:
            cache[table_name] = {
                c["name"]: c["type"] for c in sa.inspect(self.engine).get_columns(table_name)
            }
        return cache[table_name]

    def _rows_to_batch(
        self, table: Table, schema: pa.Schema, rows: Sequence[Any]
    ) -> pa.RecordBatch:
        columns = list(zip(*rows, strict=True))
        arrays = []
        bad_by_column: dict[str, BadValues] = {}
        for i, col in enumerate(table.columns):
            array, bad = convert_values(columns[i], col)
            arrays.append(array)
            if bad:
                bad_by_column[col.name] = bad
        arrays.append(unreadable_column(len(rows), bad_by_column))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is None:
        return
    yield first
    yield from rest
