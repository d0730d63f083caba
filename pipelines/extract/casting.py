"""Casting source values to their contract types (Arrow), value by value when needed.

A value that cannot be read as its column's type becomes null and is returned beside the
array (row index -> original value); :func:`unreadable_column` turns those into the
``_unreadable`` column of a batch (JSON ``{column: original text}``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import ARROW_TYPES, Column

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


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _in_int64(value: int) -> int:
    """A whole number that fits the contract's 64-bit integers (else unreadable, not an
    OverflowError: 99999999999999999999 in a CSV or 1e20 from SQL is one bad value)."""
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{value} is outside the 64-bit integer range")
    return value


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return _in_int64(v)
    if isinstance(v, float | Decimal):
        if v != v or v in (float("inf"), float("-inf")) or v != int(v):  # NaN, inf, fraction
            raise ValueError(v)
        return _in_int64(int(v))
    if isinstance(v, str | bytes):
        text = _to_string(v).strip()
        try:
            return _in_int64(int(text))
        except ValueError as exc:
            if "64-bit" in str(exc):
                raise
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


def python_convert(values: Sequence[Any], col: Column) -> tuple[pa.Array, BadValues]:
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


def _is_number_type(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or (pa.types.is_decimal(arrow_type))
    )


def cast_arrow(arr: pa.Array, col: Column) -> tuple[pa.Array, BadValues]:
    """Cast an Arrow array to the contract type; falls back to Python per value."""
    target = ARROW_TYPES[col.type]
    if arr.type == target:
        return arr, {}
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if col.type in ("date", "timestamp") and _is_number_type(arr.type):
        # Arrow would read 1727654400000 as microseconds (a day of 1970): a number in a
        # date or timestamp column is unreadable (epoch seconds or milliseconds? the
        # contract says ISO text or a native date), quarantined naming the column
        return python_convert(arr.to_pylist(), col)
    try:
        if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
            arr = pc.cast(arr, pa.timestamp("us", tz="UTC"))
            return pc.cast(arr, target), {}  # keeps the UTC wall clock
        return pc.cast(arr, target), {}
    except _ARROW_ERRORS:
        return python_convert(arr.to_pylist(), col)


def convert_values(values: Sequence[Any], col: Column) -> tuple[pa.Array, BadValues]:
    """Python values (from a DB-API cursor) to an Arrow array of the contract type."""
    target = ARROW_TYPES[col.type]
    numbers_as_dates = col.type in ("date", "timestamp") and any(
        isinstance(v, int | float | Decimal) for v in values
    )  # pa.array would read an epoch number as microseconds of 1970
    if col.type != "integer" and not numbers_as_dates:  # nor truncate floats to integers
        try:
            return pa.array(values, type=target), {}
        except _ARROW_ERRORS:
            pass
    if numbers_as_dates:
        return python_convert(values, col)
    try:
        return cast_arrow(pa.array(values), col)
    except _ARROW_ERRORS:
        return python_convert(values, col)


def _shown(value: Any) -> str:
    """A value that could not be read, as text for the audit (bytes decoded leniently)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


#: key of the UNREADABLE JSON that says where the row is (e.g. ``clients.csv line 2``);
#: not a column: the loader shows it beside the unreadable columns
UNREADABLE_AT = "_at"


def unreadable_column(
    num_rows: int,
    bad_by_column: dict[str, BadValues],
    where: dict[int, str] | None = None,
) -> pa.Array:
    """The UNREADABLE column of a batch: null, or JSON {column: original text} per row.

    ``where`` (row index -> text) adds where a bad row is in its source (file and line)
    under the key UNREADABLE_AT.
    """
    per_row: dict[int, dict[str, str]] = {}
    for name, bad in bad_by_column.items():
        for index, value in bad.items():
            per_row.setdefault(index, {})[name] = _shown(value)
    for index, text in (where or {}).items():
        if index in per_row:
            per_row[index][UNREADABLE_AT] = text
    if not per_row:
        return pa.nulls(num_rows, pa.string())
    return pa.array(
        [
            json.dumps(per_row[i], ensure_ascii=False) if i in per_row else None
            for i in range(num_rows)
        ],
        type=pa.string(),
    )
