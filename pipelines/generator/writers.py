"""Sinks for generated Arrow batches: SQLite file, any SQLAlchemy URL, Parquet folder.

PostgreSQL is loaded with COPY (psycopg2 raw connection), SQLite with ``executemany``
inside one transaction, other databases with SQLAlchemy ``insert`` in chunks.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines.contract import Table, tables_of
from pipelines.extract.sql_source import with_installed_driver
from pipelines.generator.simulate import arrow_schema

_SA_TYPES = {
    "string": lambda: sa.String(255),
    "integer": sa.BigInteger,
    "double": lambda: sa.Float(precision=53),
    "boolean": sa.Boolean,
    "date": sa.Date,
    "timestamp": lambda: sa.DateTime(timezone=False),
}


def sqlalchemy_metadata(system: str) -> sa.MetaData:
    """SQLAlchemy tables of one contract system (types and primary keys)."""
    metadata = sa.MetaData()
    for table in tables_of(system):  # type: ignore[arg-type]
        sa.Table(
            table.name,
            metadata,
            *[
                sa.Column(
                    c.name,
                    _SA_TYPES[c.type](),
                    primary_key=c.name in table.primary_key,
                    nullable=c.nullable and c.name not in table.primary_key,
                )
                for c in table.columns
            ],
        )
    return metadata


class Sink(Protocol):
    def write(self, name: str, batch: pa.Table) -> None: ...
    def close(self) -> None: ...


class ParquetSink:
    """One Parquet file per table: <folder>/<table>.parquet."""

    def __init__(self, folder: Path, system: str) -> None:
        self.folder = folder
        self.system = system
        folder.mkdir(parents=True, exist_ok=True)
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._tables: list[Table] = tables_of(system)  # type: ignore[arg-type]
        for table in self._tables:
            (folder / f"{table.name}.parquet").unlink(missing_ok=True)

    def write(self, name: str, batch: pa.Table) -> None:
        writer = self._writers.get(name)
        if writer is None:
            writer = pq.ParquetWriter(self.folder / f"{name}.parquet", batch.schema)
            self._writers[name] = writer
        writer.write_table(batch)

    def close(self) -> None:
        for table in self._tables:
            if table.name not in self._writers:
                schema = arrow_schema(self.system, table.name)
                pq.write_table(schema.empty_table(), self.folder / f"{table.name}.parquet")
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class SqlSink:
    """Any SQLAlchemy URL: (re)creates the contract tables of the system, then loads."""

    def __init__(self, url: str, system: str) -> None:
        self.system = system
        self.engine = sa.create_engine(with_installed_driver(url), poolclass=sa.pool.NullPool)
        self.metadata = sqlalchemy_metadata(system)
        self.metadata.drop_all(self.engine, checkfirst=True)
        self.metadata.create_all(self.engine)
        self.dialect = self.engine.dialect.name
        self.driver = self.engine.dialect.driver
        self._raw = None
        if self.dialect == "sqlite" or (self.dialect == "postgresql" and self.driver == "psycopg2"):
            self._raw = self.engine.raw_connection()
            if self.dialect == "sqlite":
                cur = self._raw.cursor()
                cur.execute("pragma synchronous = off")
                cur.execute("pragma journal_mode = memory")
                cur.close()

    def write(self, name: str, batch: pa.Table) -> None:
        if batch.num_rows == 0:
            return
        if self._raw is not None and self.dialect == "sqlite":
            self._write_sqlite(name, batch)
        elif self._raw is not None:
            self._write_copy(name, batch)
        else:
            self._write_generic(name, batch)

    def _write_sqlite(self, name: str, batch: pa.Table) -> None:
        # Store dates and timestamps in SQLAlchemy's SQLite text formats so that a
        # reflected DATE / DATETIME column reads back as date / datetime.
        columns = []
        for column in batch.columns:
            if pa.types.is_date32(column.type):
                column = pc.strftime(column, "%Y-%m-%d")
            elif pa.types.is_timestamp(column.type):
                column = pc.strftime(column, "%Y-%m-%d %H:%M:%S")  # .ffffff for unit us
            columns.append(column.to_pylist())
        placeholders = ", ".join("?" * batch.num_columns)
        sql = f"insert into {name} ({', '.join(batch.column_names)}) values ({placeholders})"
        cur = self._raw.cursor()
        cur.executemany(sql, zip(*columns, strict=True))
        cur.close()

    def _write_copy(self, name: str, batch: pa.Table) -> None:
        buf = io.BytesIO()
        pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
        buf.seek(0)
        cur = self._raw.cursor()
        cur.copy_expert(
            f"copy {name} ({', '.join(batch.column_names)}) from stdin with (format csv)", buf
        )
        cur.close()

    def _write_generic(self, name: str, batch: pa.Table) -> None:
        table = self.metadata.tables[name]
        with self.engine.begin() as conn:
            for chunk in batch.to_batches(max_chunksize=10_000):
                conn.execute(table.insert(), chunk.to_pylist())

    def close(self) -> None:
        if self._raw is not None:
            self._raw.commit()
            self._raw.close()
            self._raw = None
        self.engine.dispose()


def open_sink(system: str, out_dir: Path, fmt: str, url: str | None) -> Sink:
    if url:
        return SqlSink(url, system)
    if fmt == "parquet":
        return ParquetSink(out_dir / system, system)
    if fmt == "sqlite":
        path = out_dir / f"{system}.sqlite"
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return SqlSink(f"sqlite:///{path.resolve()}", system)
    raise ValueError(f"unknown format {fmt!r} (sqlite or parquet)")
