"""What every source connector shares: :class:`Source`, its errors and batch schema.

A :class:`Source` checks the source contract (``pipelines.contract``) and streams a
contract table as Arrow record batches typed per contract, ``chunk_rows`` rows at a
time, so memory stays bounded whatever the size of the table.

A value that cannot be read as its column's type (``'lots'`` in a numeric column, an
unparsable date) does not stop the extraction: the value becomes null in the typed batch
and the row's ``_unreadable`` column holds ``{column: original text}`` as JSON, so the
loader can keep the row aside (``raw_meta.rejected_rows``) and the quarantine count it.
Only a column whose sampled values are mostly unreadable breaks the contract (the column
holds another type, or another format, than the contract says).

* SQL sources (SQLite, PostgreSQL, MySQL/MariaDB, ... any SQLAlchemy URL) are read
  with a streaming cursor (``stream_results``: a server-side cursor where the
  dialect has one) and ``fetchmany``.
* A folder holds one file per contract table, ``<table>.parquet`` or ``<table>.csv``
  (names matched case-insensitively). Parquet is read with ``iter_batches``, CSV
  with pyarrow's streaming reader.

Table and column names are matched case-insensitively; extra columns are ignored.
Credentials never appear in messages: every URL shown is masked (``pipelines.secrets``).

The connectors are in ``sql_source`` and ``folder_source``; ``connect.open_source``
opens the right one for a URL or a folder path.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from pipelines.contract import ARROW_TYPES, Column, Table, tables_of
from pipelines.extract.casting import convert_values

log = logging.getLogger(__name__)

SAMPLE_VALUES = 1000  # non-null values per column checked for type readability
SAMPLE_SCAN_ROWS = 200_000  # files: rows scanned at most to find those values


class ContractError(ValueError):
    """The source does not satisfy the contract; the message names system, table, column."""

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        self.problems = list(problems) if problems else [message]
        super().__init__(message)


class SourceUnavailableError(ConnectionError):
    """The source cannot be reached (after retries); the message names the masked source."""


#: column added to every extracted batch: null, or JSON ``{column: original text}`` of the
#: row's values that cannot be read as their contract type
UNREADABLE = "_unreadable"
#: a column breaks the contract when more than this share of its sample is unreadable
MAX_UNREADABLE_SAMPLE_SHARE = 0.5


def arrow_schema(table: Table) -> pa.Schema:
    """The Arrow schema of a contract table (contract names and types, contract order)."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in table.columns])


def batch_schema(table: Table) -> pa.Schema:
    """The schema of the batches a source yields: the contract columns, then UNREADABLE."""
    return arrow_schema(table).append(pa.field(UNREADABLE, pa.string()))


def _describe_key(table: Table, key_values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={key_values.get(k)!r}" for k in table.primary_key)


# --------------------------------------------------------------------------- Source


class Source(ABC):
    """A source system that satisfies (or not) the contract."""

    system: str
    location: str  # masked description of where the data comes from

    def __init__(self, system: str, location: str) -> None:
        self.system = system
        self.location = location
        self._columns: dict[str, dict[str, str]] = {}  # table -> contract col -> actual col
        self._names: dict[str, str] = {}  # table -> actual table (or file) name

    # -- to implement
    @abstractmethod
    def _table_names(self) -> dict[str, str]:
        """Lower-case name -> actual name of every table (or file stem) in the source."""

    @abstractmethod
    def _column_names(self, actual_table: str) -> list[str]:
        """Actual column names of a table."""

    @abstractmethod
    def _sample(self, table: Table, column: Column) -> tuple[list[Any], list[dict[str, Any]]]:
        """Up to SAMPLE_VALUES non-null raw values of a column and the keys of their rows."""

    @abstractmethod
    def _iter_typed(
        self, table: Table, since: datetime | None, chunk_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Typed batches of the rows to extract."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- contract
    def _resolve(self, table: Table) -> tuple[str, dict[str, str]]:
        """Actual table name and contract column -> actual column; raises ContractError."""
        if table.name in self._names:
            return self._names[table.name], self._columns[table.name]
        problems = self._resolve_problems(table)
        if problems:
            raise ContractError("; ".join(problems), problems)
        return self._names[table.name], self._columns[table.name]

    def _resolve_problems(self, table: Table) -> list[str]:
        names = self._table_names()
        actual = names.get(table.name) or names.get(table.name.lower())
        if actual is None:
            return [f"{self.system}.{table.name}: table '{table.name}' is missing"]
        columns = self._column_names(actual)
        exact = {c: c for c in columns}
        lower: dict[str, str] = {}
        for c in columns:
            lower.setdefault(c.lower(), c)
        mapping: dict[str, str] = {}
        problems = []
        for col in table.columns:
            found = exact.get(col.name) or lower.get(col.name.lower())
            if found is None:
                problems.append(
                    f"{self.system}.{table.name}: column '{col.name}' is missing "
                    f"(expected {col.type})"
                )
            else:
                mapping[col.name] = found
        if not problems:
            self._names[table.name] = actual
            self._columns[table.name] = mapping
        return problems

    def check_contract(self) -> None:
        """Check tables, columns and the readability of a sample of every column.

        A column breaks the contract when more than MAX_UNREADABLE_SAMPLE_SHARE of its
        sampled non-null values cannot be read as its type; fewer unreadable values are
        single bad rows, flagged in the batches (UNREADABLE) and quarantined later.
        Raises :class:`ContractError` listing every problem found; each names the system,
        the table and the column.
        """
        problems: list[str] = []
        for table in tables_of(self.system):  # type: ignore[arg-type]
            table_problems = self._resolve_problems(table)
            problems += table_problems
            if table_problems:
                continue
            for col in table.columns:
                values, keys = self._sample(table, col)
                _, bad = convert_values(values, col)
                if values and len(bad) > MAX_UNREADABLE_SAMPLE_SHARE * len(values):
                    index, value = next(iter(bad.items()))
                    problems.append(
                        f"{self.system}.{table.name}: column '{col.name}' cannot be read as "
                        f"{col.type} ({len(bad)} of {len(values)} sampled values unreadable, "
                        f"e.g. {value!r} for {_describe_key(table, keys[index])})"
                    )
        if problems:
            raise ContractError("; ".join(problems), problems)
        log.info("%s contract ok (%s)", self.system, self.location)

    # -- row counts
    def _count_rows(self, actual_table: str) -> int:
        """Rows of a table (cheap: count(*), file metadata, a streaming count)."""
        raise NotImplementedError(f"{type(self).__name__} cannot count rows")

    def count_rows(self, table: Table) -> int:
        """Number of rows of ``table`` in the source, whatever their timestamps."""
        if table.system != self.system:
            raise ValueError(f"{table.system}.{table.name} is not a table of {self.system}")
        actual, _ = self._resolve(table)
        return int(self._count_rows(actual))

    # -- keys
    def _iter_key_batches(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        """Batches of the primary key columns only, of every row, typed per contract
        (connectors read only the key columns; this default reads whole rows)."""
        keys = list(table.primary_key)
        for batch in self._iter_typed(table, None, chunk_rows):
            yield pa.RecordBatch.from_arrays([batch.column(k) for k in keys], names=keys)

    def iter_keys(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        """The primary key of every row of ``table`` in the source (key columns only,
        contract types; an unreadable key value is null), ``chunk_rows`` at a time: what
        the loader's key reconciliation compares the raw layer with."""
        if table.system != self.system:
            raise ValueError(f"{table.system}.{table.name} is not a table of {self.system}")
        self._resolve(table)
        yield from self._iter_key_batches(table, max(1, chunk_rows))

    # -- extraction
    def iter_batches(
        self, table: Table, since: datetime | None, chunk_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Rows of ``table`` changed since ``since`` (inclusive), as typed Arrow batches
        of :func:`batch_schema` (contract columns, then UNREADABLE).

        Tables with an incremental column: rows with ``column >= since`` (all when
        ``since`` is None). Child tables (``table.parent``): the children of the parents
        changed since ``since``. Other tables: every row.
        """
        if table.system != self.system:
            raise ValueError(f"{table.system}.{table.name} is not a table of {self.system}")
        if chunk_rows <= 0:
            raise ValueError("chunk_rows must be positive")
        self._resolve(table)
        yield from self._iter_typed(table, since, chunk_rows)
