"""Source connectors: a SQLAlchemy URL or a folder of CSV/Parquet files.

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
Credentials never appear in messages: every URL shown goes through :func:`mask_url`.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from pipelines.contract import Column, Table, get_table, tables_of

log = logging.getLogger(__name__)

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}

SAMPLE_VALUES = 1000  # non-null values per column checked for type readability
SAMPLE_SCAN_ROWS = 200_000  # files: rows scanned at most to find those values
FILE_SUFFIXES = (".parquet", ".csv")


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


# --------------------------------------------------------------------------- URLs

_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@"
)
_SECRET_PARAMS = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_key)=([^&;\s]+)")


def mask_url(url: str | None) -> str:
    """The URL with its password (and password-like query parameters) replaced by ``***``."""
    if url is None:
        return "<not configured>"
    text = str(url)
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=***", masked)


def _scrub(message: str, url: str) -> str:
    """Remove the password of ``url`` from a driver's message, in case it echoes it."""
    message = mask_url(message)
    try:
        password = make_url(url).password
    except Exception:  # not a SQLAlchemy URL: nothing more to hide
        password = None
    if password:
        message = message.replace(str(password), "***")
    return message


def is_sql_url(url: str) -> bool:
    return "://" in url and not url.lower().startswith("file://")


# --------------------------------------------------------------------------- casts


BadValues = dict[int, Any]  # row index in the batch -> the value that cannot be read


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _to_string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float | Decimal):
        if v != v or v != int(v):  # NaN or fractional
            raise ValueError(v)
        return int(v)
    if isinstance(v, str | bytes):
        text = _to_string(v).strip()
        try:
            return int(text)
        except ValueError:
            return _to_int(Decimal(text))
    raise ValueError(v)


def _to_float(v: Any) -> float:
    if isinstance(v, bool | int | float | Decimal):
        return float(v)
    if isinstance(v, str | bytes):
        return float(_to_string(v).strip())
    raise ValueError(v)


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float | Decimal) and v in (0, 1):
        return bool(v)
    if isinstance(v, str | bytes):
        text = _to_string(v).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(v)


def _naive_utc(v: datetime) -> datetime:
    if v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


def _to_timestamp(v: Any) -> datetime:
    if isinstance(v, datetime):
        return _naive_utc(v)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day)
    if isinstance(v, str | bytes):
        return _naive_utc(datetime.fromisoformat(_to_string(v).strip()))
    raise ValueError(v)


def _to_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, str | bytes):
        text = _to_string(v).strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            return datetime.fromisoformat(text).date()
    raise ValueError(v)


_PY_CONVERTERS = {
    "string": _to_string,
    "integer": _to_int,
    "double": _to_float,
    "boolean": _to_bool,
    "date": _to_date,
    "timestamp": _to_timestamp,
}

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError)


def _python_convert(values: Sequence[Any], col: Column) -> tuple[pa.Array, BadValues]:
    """Convert value by value; a value that cannot be read becomes null and is returned."""
    convert = _PY_CONVERTERS[col.type]
    out: list[Any] = []
    bad: BadValues = {}
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(convert(v))
        except (ValueError, TypeError, ArithmeticError, UnicodeDecodeError):
            out.append(None)
            bad[i] = v
    return pa.array(out, type=ARROW_TYPES[col.type]), bad


def _cast_arrow(arr: pa.Array, col: Column) -> tuple[pa.Array, BadValues]:
    """Cast an Arrow array to the contract type; falls back to Python per value."""
    target = ARROW_TYPES[col.type]
    if arr.type == target:
        return arr, {}
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    try:
        if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
            arr = pc.cast(arr, pa.timestamp("us", tz="UTC"))
            return pc.cast(arr, target), {}  # keeps the UTC wall clock
        return pc.cast(arr, target), {}
    except _ARROW_ERRORS:
        return _python_convert(arr.to_pylist(), col)


def _convert_values(values: Sequence[Any], col: Column) -> tuple[pa.Array, BadValues]:
    """Python values (from a DB-API cursor) to an Arrow array of the contract type."""
    target = ARROW_TYPES[col.type]
    if col.type != "integer":  # pa.array would silently truncate floats to integers
        try:
            return pa.array(values, type=target), {}
        except _ARROW_ERRORS:
            pass
    try:
        return _cast_arrow(pa.array(values), col)
    except _ARROW_ERRORS:
        return _python_convert(values, col)


def _shown(value: Any) -> str:
    """A value that could not be read, as text for the audit (bytes decoded leniently)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _unreadable_column(num_rows: int, bad_by_column: dict[str, BadValues]) -> pa.Array:
    """The UNREADABLE column of a batch: null, or JSON {column: original text} per row."""
    per_row: dict[int, dict[str, str]] = {}
    for name, bad in bad_by_column.items():
        for index, value in bad.items():
            per_row.setdefault(index, {})[name] = _shown(value)
    if not per_row:
        return pa.nulls(num_rows, pa.string())
    return pa.array(
        [
            json.dumps(per_row[i], ensure_ascii=False) if i in per_row else None
            for i in range(num_rows)
        ],
        type=pa.string(),
    )


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
                _, bad = _convert_values(values, col)
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


# --------------------------------------------------------------------------- SQL


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


def _engine_options(url: str, connect_timeout: float) -> dict[str, Any]:
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
            return (
                sa.select(*[child.c[mapping[c]] for c in table.column_names])
                .select_from(child.join(par, child.c[mapping[key]] == par.c[pmap[key]]))
                .where(par.c[pmap[incr]] >= self._bind_since(since))
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

    def _rows_to_batch(
        self, table: Table, schema: pa.Schema, rows: Sequence[Any]
    ) -> pa.RecordBatch:
        columns = list(zip(*rows, strict=True))
        arrays = []
        bad_by_column: dict[str, BadValues] = {}
        for i, col in enumerate(table.columns):
            array, bad = _convert_values(columns[i], col)
            arrays.append(array)
            if bad:
                bad_by_column[col.name] = bad
        arrays.append(_unreadable_column(len(rows), bad_by_column))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


# --------------------------------------------------------------------------- files


def _rebatch(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """Regroup batches into batches of ``chunk_rows`` rows (the last may be smaller)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= chunk_rows:
            table = pa.Table.from_batches(pending)
            head, tail = table.slice(0, chunk_rows), table.slice(chunk_rows)
            yield head.combine_chunks().to_batches()[0]
            pending = tail.combine_chunks().to_batches() if tail.num_rows else []
            count = tail.num_rows
    if count:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


class FolderSource(Source):
    """A folder with one ``<table>.parquet`` or ``<table>.csv`` file per contract table."""

    def __init__(self, system: str, folder: Path) -> None:
        super().__init__(system, str(folder))
        self.folder = folder

    def _files(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for suffix in FILE_SUFFIXES:  # parquet wins over csv
            for path in sorted(self.folder.iterdir()):
                if path.is_file() and path.suffix.lower() == suffix:
                    files.setdefault(path.stem, path)
                    files.setdefault(path.stem.lower(), path)
        return files

    def _table_names(self) -> dict[str, str]:
        return {k: p.name for k, p in self._files().items()}

    def _path(self, actual: str) -> Path:
        return self.folder / actual

    def _column_names(self, actual_table: str) -> list[str]:
        path = self._path(actual_table)
        if path.suffix.lower() == ".parquet":
            return list(pq.ParquetFile(path).schema_arrow.names)
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
        return [h.strip() for h in header]

    def _count_rows(self, actual_table: str) -> int:
        path = self._path(actual_table)
        if path.suffix.lower() == ".parquet":
            pfile = pq.ParquetFile(path)
            try:
                return pfile.metadata.num_rows
            finally:
                pfile.close()
        header = self._column_names(actual_table)
        if not header:
            return 0
        reader = pacsv.open_csv(  # streams; quoted line breaks are handled by the parser
            path,
            read_options=pacsv.ReadOptions(
                column_names=header, skip_rows=1, block_size=4 << 20, encoding="utf8"
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=header[:1], column_types={header[0]: pa.string()}
            ),
        )
        try:
            return sum(batch.num_rows for batch in reader)
        finally:
            reader.close()

    def _raw_batches(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        """Untyped batches with the contract's column names, in contract order."""
        actual, mapping = self._resolve(table)
        path = self._path(actual)
        names = [mapping[c] for c in table.column_names]
        if path.suffix.lower() == ".parquet":
            pfile = pq.ParquetFile(path)
            try:
                for batch in pfile.iter_batches(batch_size=chunk_rows, columns=names):
                    yield pa.RecordBatch.from_arrays(
                        [batch.column(n) for n in names], names=table.column_names
                    )
            finally:
                pfile.close()
            return
        header = self._column_names(actual)
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=header, skip_rows=1, block_size=4 << 20, encoding="utf8"
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=names,
                column_types=dict.fromkeys(names, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
        try:
            batches = (
                pa.RecordBatch.from_arrays([b.column(n) for n in names], names=table.column_names)
                for b in reader
            )
            yield from _rebatch(batches, chunk_rows)
        finally:
            reader.close()

    def _sample(self, table: Table, column: Column) -> tuple[list[Any], list[dict[str, Any]]]:
        values: list[Any] = []
        keys: list[dict[str, Any]] = []
        scanned = 0
        for batch in self._raw_batches(table, 10_000):
            arr = batch.column(column.name)
            mask = pc.is_valid(arr)
            picked = batch.filter(mask).slice(0, SAMPLE_VALUES - len(values))
            values += picked.column(column.name).to_pylist()
            key_cols = {k: picked.column(k).to_pylist() for k in table.primary_key}
            keys += [{k: key_cols[k][i] for k in table.primary_key} for i in range(picked.num_rows)]
            scanned += batch.num_rows
            if len(values) >= SAMPLE_VALUES or scanned >= SAMPLE_SCAN_ROWS:
                break
        return values, keys

    def _typed(self, table: Table, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        bad_by_column: dict[str, BadValues] = {}
        for col in table.columns:
            array, bad = _cast_arrow(batch.column(col.name), col)
            arrays.append(array)
            if bad:
                bad_by_column[col.name] = bad
        arrays.append(_unreadable_column(batch.num_rows, bad_by_column))
        return pa.RecordBatch.from_arrays(arrays, schema=batch_schema(table))

    def _typed_batches(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        for batch in self._raw_batches(table, chunk_rows):
            yield self._typed(table, batch)

    def _changed_keys(self, parent: Table, key: str, since: datetime) -> pa.Array:
        """Distinct ``key`` values of the parent rows changed since ``since``."""
        incr = parent.incremental_column
        assert incr is not None, f"parent {parent.name} needs an incremental column"
        bound = pa.scalar(since, pa.timestamp("us"))
        parts = []
        for batch in self._typed_batches(parent, 100_000):
            changed = batch.filter(pc.greater_equal(batch.column(incr), bound))
            if changed.num_rows:
                parts.append(pc.unique(changed.column(key)))
        if not parts:
            return pa.array([], type=ARROW_TYPES[parent.column(key).type])
        return pc.unique(pa.chunked_array(parts))

    def _iter_typed(
        self, table: Table, since: datetime | None, chunk_rows: int
    ) -> Iterator[pa.RecordBatch]:
        if since is None or (table.parent is None and table.incremental_column is None):
            yield from self._typed_batches(table, chunk_rows)
            return
        if table.parent is not None:
            parent = get_table(table.system, table.parent[0])
            key = table.parent[1]
            changed = self._changed_keys(parent, key, since)
            if len(changed) == 0:
                return
            for batch in self._typed_batches(table, chunk_rows):
                picked = batch.filter(pc.is_in(batch.column(key), value_set=changed))
                if picked.num_rows:
                    yield picked
            return
        bound = pa.scalar(since, pa.timestamp("us"))
        incr = table.incremental_column
        for batch in self._typed_batches(table, chunk_rows):
            # rows with an unreadable value are always passed on: their incremental
            # column may be the unreadable one, and the loader must see them to keep them
            changed = pc.or_kleene(
                pc.greater_equal(batch.column(incr), bound), pc.is_valid(batch.column(UNREADABLE))
            )
            picked = batch.filter(changed)
            if picked.num_rows:
                yield picked


# --------------------------------------------------------------------------- open


def _open_sql(
    system: str, url: str, attempts: int, backoff_seconds: float, connect_timeout: float
) -> SqlSource:
    masked = mask_url(url)
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            in_file = database and database != ":memory:" and not database.startswith("file:")
            if in_file and not Path(database).is_file():
                raise SourceUnavailableError(
                    f"{system} source {masked}: SQLite file {database} does not exist"
                )
        url = with_installed_driver(url)
        engine = sa.create_engine(url, **_engine_options(url, connect_timeout))
    except SourceUnavailableError:
        raise
    except Exception as exc:  # bad URL, missing driver
        raise SourceUnavailableError(
            f"{system} source {masked}: cannot use this URL "
            f"({type(exc).__name__}: {_scrub(str(exc), url)})"
        ) from None
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect():
                pass
            return SqlSource(system, url, engine)
        except (sa.exc.DBAPIError, OSError) as exc:
            last = exc
            log.warning(
                "%s source %s: connection attempt %d/%d failed", system, masked, attempt, attempts
            )
            if attempt < attempts:
                time.sleep(backoff_seconds * 2 ** (attempt - 1))
    engine.dispose()
    detail = getattr(last, "orig", last)
    raise SourceUnavailableError(
        f"{system} source {masked} is unreachable after {attempts} attempts "
        f"({type(detail).__name__}: {_scrub(str(detail).strip(), url)})"
    ) from None


def open_source(
    system: str,
    url: str,
    *,
    attempts: int = 3,
    backoff_seconds: float = 1.0,
    connect_timeout: float = 10.0,
) -> Source:
    """Open the source of ``system`` ('erp' or 'crm') at ``url``.

    ``url`` is a SQLAlchemy URL or the path of a folder of CSV/Parquet files. A database
    that cannot be reached is retried ``attempts`` times with exponential backoff, then
    :class:`SourceUnavailableError` is raised naming the system and the masked URL.
    """
    if system not in ("erp", "crm"):
        raise ValueError(f"unknown source system {system!r} (expected 'erp' or 'crm')")
    if not url or not str(url).strip():
        raise ValueError(f"no URL given for the {system} source")
    url = str(url).strip()
    if is_sql_url(url):
        return _open_sql(system, url, max(1, attempts), backoff_seconds, connect_timeout)
    folder = Path(url.removeprefix("file://")).expanduser()
    if not folder.is_dir():
        raise SourceUnavailableError(f"{system} source {folder}: folder does not exist")
    return FolderSource(system, folder)
