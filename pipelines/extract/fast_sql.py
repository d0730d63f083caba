"""Fast readers for SQL sources: SQLite and PostgreSQL read straight into Arrow (ADBC).

Reading rows through SQLAlchemy and a DB-API cursor builds one Python object per value
(~100-150k rows/s); the ADBC drivers fill Arrow arrays in C (SQLite: ``sqlite3_step``;
PostgreSQL: ``COPY ... TO STDOUT (FORMAT binary)``), several times faster. The batches
they give are re-cut to ``chunk_rows`` rows and cast per contract column by the same
casting layer as the generic path (:mod:`pipelines.extract.casting`), so that every
batch is equal to the one the generic path gives for the same rows: same schema, same
values, same unreadable values (null in the column, original value in UNREADABLE).

SQLite types values, not columns: a column declared INTEGER may hold ``'lots'``. ADBC
infers one Arrow type per column and fails on a value of another type, so the query
splits every column in two: the value when its SQLite type is the one the contract type
reads natively (text for strings, dates and timestamps; integer; real), else null; and
``quote(value)`` (exact text: SQL literal) for any other value. Rows with such "odd"
values are rare; their column is then converted value by value exactly as the generic
path does, from the original Python values decoded from the literal. (One value cannot
be told apart: ``quote(-0.0)`` is ``0.0``, so a negative zero stored in a text column
reads ``'0'``, not ``'-0'``.)

PostgreSQL types columns: a table is read fast when every column has a type whose Arrow
form casts to the same values as psycopg2's Python objects (text, integers, double,
boolean, date, timestamp[tz]; ``real`` and ``numeric`` are sent as text, as psycopg2
parses them); any other type leaves the table to the generic path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL

from pipelines.contract import Column, Table
from pipelines.extract.casting import BadValues, cast_arrow, convert_values, unreadable_column

log = logging.getLogger(__name__)

#: PostgreSQL: bytes of COPY data ADBC turns into one Arrow batch. Memory per read is
#: bounded by this plus ``chunk_rows`` rows; 4-64 MB measured the same speed.
PG_BATCH_BYTES = 8 << 20

# Double values CAST from SQLite integers are exact only up to 2**53 (as pyarrow, which
# refuses larger integers for float64: those go the odd, value-by-value way).
_EXACT_INT = 2**53

# SQLite type read natively for each contract type, and the probe value that makes ADBC
# infer the right Arrow type for the column even when its first rows are all null.
_SQLITE_NATIVE = {
    "string": ("text", "''"),
    "date": ("text", "''"),
    "timestamp": ("text", "''"),
    "integer": ("integer", "0"),
    "boolean": ("integer", "0"),
    "double": ("real", "0.0"),
}
_PROBE = "_kam_probe"


def drivers_available() -> bool:
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
        import adbc_driver_sqlite.dbapi  # noqa: F401
    except ImportError:  # an install without the ADBC drivers: the generic path reads
        return False
    return True


# --------------------------------------------------------------------------- shared


def rechunk(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of exactly ``chunk_rows`` rows (the last one smaller):
    the generic path's chunks, so the casting layer decides on the same rows."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        while batch.num_rows:
            take = min(chunk_rows - held, batch.num_rows)
            pending.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == chunk_rows:
                yield _combine(pending)
                pending, held = [], 0
    if held:
        yield _combine(pending)


def _combine(pieces: Sequence[pa.RecordBatch]) -> pa.RecordBatch:
    if len(pieces) == 1:
        return pieces[0]
    return pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]


def typed_column(
    arr: pa.Array, col: Column, odd: dict[int, Any] | None = None
) -> tuple[pa.Array, BadValues]:
    """One column of a chunk cast to its contract type.

    Without odd values the Arrow array is cast as a whole (``cast_arrow``: what
    ``convert_values`` does with the same values as Python objects). With odd values the
    column goes value by value through ``convert_values``, as on the generic path.
    """
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr.validate(full=True)  # invalid UTF-8 fails here, as the DB-API decode would
    if not odd:
        return cast_arrow(arr, col)
    values = arr.to_pylist()
    for index, value in odd.items():
        values[index] = value
    return convert_values(values, col)


def contract_batch(
    table: Table,
    schema: pa.Schema,
    columns: Sequence[pa.Array],
    odd: Sequence[dict[int, Any]] | None = None,
) -> pa.RecordBatch:
    """A batch of :func:`batch_schema`: the contract columns cast, then UNREADABLE."""
    arrays = []
    bad_by_column: dict[str, BadValues] = {}
    for i, col in enumerate(table.columns):
        array, bad = typed_column(columns[i], col, odd[i] if odd else None)
        arrays.append(array)
        if bad:
            bad_by_column[col.name] = bad
    num_rows = len(columns[0]) if columns else 0
    arrays.append(unreadable_column(num_rows, bad_by_column))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def key_batch(keys: Sequence[Column], columns: Sequence[pa.Array], odd=None) -> pa.RecordBatch:
    """Key columns cast to their contract types (an unreadable key is null)."""
    arrays = [typed_column(columns[i], k, odd[i] if odd else None)[0] for i, k in enumerate(keys)]
    return pa.RecordBatch.from_arrays(arrays, names=[k.name for k in keys])


def inline_sql(stmt: sa.Select | sa.CompoundSelect, dialect: sa.Dialect) -> str:
    """SQL text of ``stmt`` with its values inlined (the watermark: a timestamp, or ISO
    text on SQLite): ADBC reads PostgreSQL by COPY, which takes no parameters."""
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


# --------------------------------------------------------------------------- SQLite


def sqlite_path(url: URL) -> str | None:
    """The file of a SQLite URL ADBC can open itself; None for memory and URI databases."""
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:") or url.query:
        return None
    return database


# Both expressions use the simple CASE form: typeof() is then called once per value and
# expression (the calls are most of the cost of the query).


def _clean(x: Any, col: Column) -> Any:
    """The value when SQLite holds it as the contract type reads it natively, else null."""
    kind = sa.func.typeof(x)
    if col.type == "double":
        exact = sa.case((x.between(-_EXACT_INT, _EXACT_INT), sa.cast(x, sa.Float)))
        return sa.case({"real": x, "integer": exact}, value=kind)
    return sa.case({_SQLITE_NATIVE[col.type][0]: x}, value=kind)


def _odd(x: Any, col: Column) -> Any:
    """``quote(value)`` of a value :func:`_clean` makes null (other than null itself)."""
    kind = sa.func.typeof(x)
    quoted = sa.func.quote(x)
    if col.type == "double":
        inexact = sa.case((x.between(-_EXACT_INT, _EXACT_INT), sa.null()), else_=quoted)
        return sa.case(
            {"real": sa.null(), "null": sa.null(), "integer": inexact}, value=kind, else_=quoted
        )
    return sa.case(
        {_SQLITE_NATIVE[col.type][0]: sa.null(), "null": sa.null()}, value=kind, else_=quoted
    )


def sqlite_fast_select(stmt: sa.Select, columns: Sequence[Column]) -> sa.CompoundSelect:
    """``stmt`` (one output column per contract column, in order) split for ADBC.

    Output: the probe flag, one clean column per contract column, then one odd column
    (``quote()`` text) per contract column. The first row is the probe (flag 1): one
    value of the right type in every column, so ADBC infers the types from it.
    """
    q = stmt.subquery("q")
    src = list(q.c)
    probe = sa.select(
        sa.literal_column("1").label(_PROBE),
        *[
            sa.literal_column(_SQLITE_NATIVE[c.type][1]).label(f"v{i}")
            for i, c in enumerate(columns)
        ],
        *[sa.literal_column("''").label(f"o{i}") for i in range(len(columns))],
    )
    rows = sa.select(
        sa.literal_column("0").label(_PROBE),
        *[_clean(src[i], c).label(f"v{i}") for i, c in enumerate(columns)],
        *[_odd(src[i], c).label(f"o{i}") for i, c in enumerate(columns)],
    ).select_from(q)
    return sa.union_all(probe, rows)


def parse_quoted(text: str) -> Any:
    """The Python value (as the sqlite3 module gives it) of SQLite ``quote()`` text."""
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text[:2] in ("X'", "x'"):
        return bytes.fromhex(text[2:-1])
    try:
        return int(text)
    except ValueError:
        return float(text)  # quote() writes reals with enough digits to round-trip


def _odd_values(arr: pa.Array) -> dict[int, Any]:
    if arr.null_count == len(arr):
        return {}
    values = arr.to_pylist()
    return {i: parse_quoted(v) for i, v in enumerate(values) if v is not None}


def _drop_probe(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    import pyarrow.compute as pc

    for batch in batches:
        flags = batch.column(0)
        if pc.any(pc.equal(flags, 1)).as_py():
            batch = batch.filter(pc.equal(flags, 0))
        yield batch


def iter_sqlite(
    path: str,
    stmt: sa.CompoundSelect,
    dialect: sa.Dialect,
    width: int,
    chunk_rows: int,
    busy_timeout: float,
) -> Iterator[tuple[list[pa.Array], list[dict[int, Any]]]]:
    """Chunks of ``sqlite_fast_select`` output: clean columns and odd values per column."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    sql = inline_sql(stmt, dialect)
    with adbc_sqlite.connect(path) as conn, conn.cursor() as cur:
        # a writer committing must not fail the read: wait as the sqlite3 timeout does
        cur.execute(f"pragma busy_timeout = {int(busy_timeout * 1000)}")
        cur.fetchall()
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(chunk_rows)})
        cur.execute(sql)
        reader = cur.fetch_record_batch()
        try:
            for batch in rechunk(_drop_probe(reader), chunk_rows):
                clean = [batch.column(1 + i) for i in range(width)]
                odd = [_odd_values(batch.column(1 + width + i)) for i in range(width)]
                yield clean, odd
        finally:
            reader.close()


# --------------------------------------------------------------------------- PostgreSQL


def pg_session_options(url: URL) -> str:
    """libpq ``options`` of a session: the URL's own (e.g. ``-csearch_path=kam``, the
    README's mapping example) followed by the UTC session time zone, which comes last so
    that timestamps are always read in UTC."""
    given = url.query.get("options", "")
    given = given if isinstance(given, str) else given[-1]
    return f"{given} -c timezone=UTC".strip()


def pg_uri(url: URL, connect_timeout: float) -> str:
    """libpq URI of a SQLAlchemy PostgreSQL URL, with the generic path's session options
    (the URL's options plus the UTC session time zone, connect timeout)."""
    query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
    query.setdefault("connect_timeout", str(max(1, int(connect_timeout))))
    query["options"] = pg_session_options(url)
    base = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    return base + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())


#: reflected PostgreSQL column types ADBC reads to the same values as psycopg2 (after
#: the contract cast); REAL and NUMERIC are sent as text: psycopg2 parses their text
_PG_NATIVE = (sa.String, sa.Integer, sa.Boolean, sa.Date, sa.DateTime)


def pg_column_expr(x: Any, reflected: Any) -> Any | None:
    """The expression to select for a column of this reflected type; None: not fast."""
    if isinstance(reflected, sa.Float):
        if getattr(reflected, "precision", None) == 53 or type(reflected).__name__ in (
            "DOUBLE_PRECISION",
            "Double",
        ):
            return x
        return sa.cast(x, sa.Text)  # real: its text is what psycopg2 reads
    if isinstance(reflected, sa.Numeric):
        return sa.cast(x, sa.Text)
    if isinstance(reflected, _PG_NATIVE) and not isinstance(reflected, sa.Interval):
        return x
    return None


def iter_postgres(uri: str, sql: str, chunk_rows: int) -> Iterator[list[pa.Array]]:
    """Chunks of the query's columns, read by ADBC over COPY (binary)."""
    import adbc_driver_postgresql.dbapi as adbc_pg

    with adbc_pg.connect(uri) as conn, conn.cursor() as cur:
        cur.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(PG_BATCH_BYTES)}
        )
        cur.execute(sql)
        reader = cur.fetch_record_batch()
        try:
            for batch in rechunk(reader, chunk_rows):
                yield list(batch.columns)
        finally:
            reader.close()
