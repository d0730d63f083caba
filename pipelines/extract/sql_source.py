"""SQL sources: any SQLAlchemy URL (SQLite, PostgreSQL, MySQL/MariaDB, ...).

Rows are read with a streaming cursor (``stream_results``: a server-side cursor where
the dialect has one) and ``fetchmany``, ``chunk_rows`` at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from pipelines.contract import Column, Table, get_table
from pipelines.extract.base import SAMPLE_VALUES, Source, batch_schema
from pipelines.extract.casting import BadValues, convert_values, unreadable_column
from pipelines.secrets import mask_url

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
    backend = make_url(url).get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args = {
            "connect_timeout": max(1, int(connect_timeout)),
            "options": "-c timezone=UTC",
        }
    elif backend in ("mysql", "mariadb"):
        connect_args = {"connect_timeout": max(1, int(connect_timeout))}
    elif backend == "sqlite":
        connect_args = {"timeout": connect_timeout}
    return {"poolclass": NullPool, "connect_args": connect_args}


class SqlSource(Source):
    """A source read through SQLAlchemy."""

    def __init__(self, system: str, url: str, engine: Engine) -> None:
        super().__init__(system, mask_url(url))
        self.engine = engine
        self._dialect = engine.dialect.name

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
        with self.engine.connect() as conn:
            result = conn.execution_options(
                stream_results=True, max_row_buffer=chunk_rows, yield_per=chunk_rows
            ).execute(stmt)
            try:
                while rows := result.fetchmany(chunk_rows):
                    yield self._rows_to_batch(table, schema, rows)
            finally:
                result.close()

    def _iter_key_batches(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        _, mapping = self._resolve(table)
        t = self._sa_table(table)
        keys = [table.column(k) for k in table.primary_key]
        stmt = sa.select(*[t.c[mapping[k.name]] for k in keys])
        with self.engine.connect() as conn:
            result = conn.execution_options(
                stream_results=True, max_row_buffer=chunk_rows, yield_per=chunk_rows
            ).execute(stmt)
            try:
                while rows := result.fetchmany(chunk_rows):
                    columns = list(zip(*rows, strict=True))
                    arrays = [convert_values(columns[i], k)[0] for i, k in enumerate(keys)]
                    yield pa.RecordBatch.from_arrays(arrays, names=[k.name for k in keys])
            finally:
                result.close()

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
