"""Validating a query's result with bounded memory: SQL first, GX on the suspect rows.

:func:`validate_relation` (what :func:`pipelines.quality.runner.run_checks` uses): DuckDB
counts each row-wise expectation's suspect rows over the whole frame, GX validates only
those rows (every frame of a table in one batch), uniqueness is counted by DuckDB alone.

:func:`validate_query` (the classic way, for expectations with no SQL form): row-wise
expectations are validated chunk by chunk over the whole result, streamed from DuckDB in
Arrow record batches, their per-chunk results summed; uniqueness is counted by SQL.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from pipelines.quality import engine
from pipelines.quality.checks import CHUNK_ROWS, SAMPLE_SIZE, CheckOutcome

#: expectations judged row by row: their results over chunks add up to the whole
ROW_WISE_EXPECTATIONS = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_pair_values_to_be_equal",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
    }
)
#: uniqueness expectations, computed by SQL over the whole relation
UNIQUE_EXPECTATIONS = frozenset(
    {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
)


def _kind(expectation: Any) -> str | None:
    """The way an expectation is validated: by chunk ("row"), by SQL ("unique") or on
    the whole frame (None)."""
    kind = getattr(expectation, "expectation_type", None)
    if kind in ROW_WISE_EXPECTATIONS:
        return "row"
    if kind in UNIQUE_EXPECTATIONS:
        return "unique"
    return None


def _pandas(data: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """An Arrow batch as pandas with DuckDB's ``.df()`` types (decimals as floats, dates
    as timestamps), so chunked checks see the same values as whole-frame ones."""
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    fields = []
    for f in table.schema:
        if pa.types.is_decimal(f.type):
            f = f.with_type(pa.float64())
        elif pa.types.is_date(f.type):
            f = f.with_type(pa.timestamp("us"))
        fields.append(f)
    schema = pa.schema(fields)
    if schema != table.schema:
        table = table.cast(schema)
    return table.to_pandas()


def iter_frames(
    con: duckdb.DuckDBPyConnection, sql: str, chunk_rows: int
) -> Iterable[pd.DataFrame]:
    """The result of ``sql`` as pandas frames of at most ``chunk_rows`` rows, streamed
    (at least one frame: an empty result yields one empty frame with its columns)."""
    reader = con.sql(sql).to_arrow_reader(chunk_rows)
    try:
        seen = False
        for batch in reader:
            if batch.num_rows == 0:
                continue
            seen = True
            yield _pandas(batch)
        if not seen:
            yield _pandas(reader.schema.empty_table())
    finally:
        reader.close()  # also when the consumer stops early


@dataclass
class _Merged:
    """One row-wise expectation's results, summed over chunks."""

    detail: dict[str, Any] | None = None
    raw: dict[str, Any] | None = None
    success: bool = True
    element_count: int = 0
    missing_count: int | None = None
    unexpected_count: int = 0
    sample: list[Any] = field(default_factory=list)
    sample_rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, detail: Mapping[str, Any], raw: Mapping[str, Any] | None) -> None:
        raw_result = dict((raw or {}).get("result") or {})
        if self.detail is None or (self.success and not detail.get("success")):
            # keep the first chunk's detail, or the first failing chunk's
            self.detail, self.raw = dict(detail), dict(raw or {})
        self.success = self.success and bool(detail.get("success"))
        self.element_count += int(detail.get("element_count") or 0)
        self.unexpected_count += int(detail.get("unexpected_count") or 0)
        if raw_result.get("missing_count") is not None:
            self.missing_count = (self.missing_count or 0) + int(raw_result["missing_count"])
        room = SAMPLE_SIZE - len(self.sample)
        if room > 0:
            self.sample += list(detail.get("sample") or [])[:room]
        room = SAMPLE_SIZE - len(self.sample_rows)
        if room > 0:
            self.sample_rows += list(detail.get("sample_rows") or [])[:room]

    def result(self) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self.detail is not None
        denominator = self.element_count - (self.missing_count or 0)
        percent = self.unexpected_count / denominator * 100 if denominator > 0 else None
        counts = {
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": percent,
        }
        if self.missing_count is not None:
            counts["missing_count"] = self.missing_count
        detail = {**self.detail, **counts, "success": self.success}
        detail["sample"], detail["sample_rows"] = self.sample, self.sample_rows
        if detail.get("error"):
            detail["success"] = False
        raw = dict(self.raw or {})
        raw["success"] = detail["success"]
        raw["result"] = {
            **dict(raw.get("result") or {}),
            **counts,
            "partial_unexpected_list": self.sample,
        }
        raw["result"].pop("partial_unexpected_index_list", None)
        raw["result"].pop("partial_unexpected_counts", None)
        return detail, raw


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _unique_columns(expectation: Any) -> tuple[list[str], str]:
    """The key columns of a uniqueness expectation and the SQL condition of the rows
    it judges (GX ignores missing values of a single column; compound keys follow
    ``ignore_row_if``)."""
    if expectation.expectation_type == "expect_column_values_to_be_unique":
        cols = [expectation.column]
        return cols, f"{_quote(cols[0])} is not null"
    cols = list(expectation.column_list)
    mode = getattr(expectation, "ignore_row_if", "all_values_are_missing")
    if mode == "never":
        return cols, "true"
    joiner = " or " if mode == "all_values_are_missing" else " and "
    return cols, "(" + joiner.join(f"{_quote(c)} is not null" for c in cols) + ")"


def _unique_sql(
    con: duckdb.DuckDBPyConnection, sql: str, expectation: Any, params: Sequence[Any] = ()
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """A uniqueness expectation, counted once by DuckDB over the whole relation (no GX
    pass over a sample: GX would only repeat what the count says). The result has the
    shape of GX's: the duplicated rows counted, their values as the sample (the first
    SAMPLE_SIZE rows, two per key, in key order) and those rows as sample rows.
    Returns (detail, GX-shaped raw result, rows)."""
    cols, judged = _unique_columns(expectation)
    kind = expectation.expectation_type
    key = ", ".join(_quote(c) for c in cols)
    dups = f"select {key}, count(*) as n__ from f where {judged} group by {key} having count(*) > 1"
    [(total, judged_rows, unexpected)] = con.execute(
        f"with f as ({sql}), d as ({dups}) select (select count(*) from f), "
        f"(select count(*) from f where {judged}), (select coalesce(sum(n__), 0) from d)",
        list(params),
    ).fetchall()
    total, judged_rows, unexpected = int(total), int(judged_rows), int(unexpected)
    rows: list[dict[str, Any]] = []
    if unexpected:
        on = " and ".join(f"f.{_quote(c)} is not distinct from d.{_quote(c)}" for c in cols)
        fkey = ", ".join(f"f.{_quote(c)}" for c in cols)
        sample_sql = (
            f"with f as ({sql}), d as ({dups} order by {key} limit {SAMPLE_SIZE}) "
            f"select f.* from f semi join d on {on} "
            f"qualify row_number() over (partition by {fkey}) <= 2 order by {fkey} "
            f"limit {SAMPLE_SIZE}"
        )
        frame = _pandas(con.sql(sample_sql, params=list(params)).to_arrow_table())
        rows = [
            {str(k): engine._plain(v) for k, v in r.items()}
            for r in frame.to_dict(orient="records")
        ]
    if kind == "expect_column_values_to_be_unique":
        sample = [r.get(cols[0]) for r in rows]
    else:
        sample = [{c: r.get(c) for c in cols} for r in rows]
    percent = unexpected / judged_rows * 100 if judged_rows else None
    kwargs = _kwargs(expectation)
    counts = {
        "element_count": total,
        "unexpected_count": unexpected,
        "unexpected_percent": percent,
        "missing_count": total - judged_rows,
    }
    detail = {
        "expectation": kind,
        "column": engine._column_of(kwargs),
        "kwargs": engine._plain(kwargs),
        "success": not unexpected,
        "element_count": total,
        "unexpected_count": unexpected,
        "unexpected_percent": percent,
        "sample": sample,
        "sample_rows": rows,
    }
    raw = {
        "success": not unexpected,
        "expectation_config": {"type": kind, "kwargs": engine._plain(kwargs), "meta": {}},
        "result": {**counts, "partial_unexpected_list": sample},
        "meta": {"evaluated_by": "duckdb"},
        "exception_info": {"raised_exception": False},
    }
    return detail, raw, total


def _kwargs(expectation: Any) -> dict[str, Any]:
    """An expectation's own kwargs (what its report shows)."""
    kwargs = dict(expectation.configuration.kwargs)
    for key in engine.ENGINE_KWARGS:
        kwargs.pop(key, None)
    return kwargs


def validate_query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    expectations: Sequence[Any],
    name: str,
    chunk_rows: int | None = None,
) -> CheckOutcome:
    """Validate the result of ``sql`` with bounded memory.

    Row-wise expectations run chunk by chunk (``chunk_rows`` rows at a time) and their
    results are summed; uniqueness is computed by SQL (see :func:`_validate_unique`).
    Any other expectation needs the whole result: it is validated on the whole frame.
    """
    started = time.perf_counter()
    chunk_rows = chunk_rows or CHUNK_ROWS
    kinds = [_kind(e) for e in expectations]
    if not expectations or None in kinds:
        df = con.execute(sql).df()
        return engine.validate_frame(df, expectations, name)

    outcome = CheckOutcome(success=False, evaluated=len(expectations), name=name)
    details: list[dict[str, Any] | None] = [None] * len(expectations)
    raws: list[dict[str, Any] | None] = [None] * len(expectations)
    row_positions = [i for i, k in enumerate(kinds) if k == "row"]
    chunks = 0
    if row_positions:
        merged = [_Merged() for _ in row_positions]
        with contextlib.closing(iter_frames(con, sql, chunk_rows)) as frames:
            for frame in frames:
                chunks += 1
                outcome.rows += len(frame)
                part = engine.validate_frame(
                    frame, [copy.deepcopy(expectations[i]) for i in row_positions], name
                )
                if part.error:  # a GX exception in any chunk fails the whole check
                    outcome.error = part.error
                    outcome.seconds = time.perf_counter() - started
                    return outcome
                raw_results = list((part.gx_result or {}).get("results") or [])
                for j, detail in enumerate(part.results):
                    merged[j].add(detail, raw_results[j] if j < len(raw_results) else None)
                del frame, part
                gc.collect()  # GX keeps each batch in reference cycles: free it now
        for i, m in zip(row_positions, merged, strict=True):
            details[i], raws[i] = m.result()
    for i, kind in enumerate(kinds):
        if kind == "unique":
            details[i], raws[i], total = _unique_sql(con, sql, expectations[i])
            if not row_positions:
                outcome.rows = total

    results = [d for d in details if d is not None]
    outcome.results = results
    outcome.failures = [engine.failure(d) for d in results if not d.get("success")]
    outcome.success = len(results) == len(expectations) and not outcome.failures
    outcome.gx_result = {
        "success": outcome.success,
        "results": [r for r in raws if r is not None],
        "statistics": {
            "evaluated_expectations": len(results),
            "successful_expectations": sum(1 for d in results if d.get("success")),
            "unsuccessful_expectations": len(outcome.failures),
        },
        "meta": {"chunks": chunks, "chunk_rows": chunk_rows, "rows": outcome.rows},
    }
    outcome.seconds = time.perf_counter() - started
    return outcome


# --------------------------------------------------------------------------- SQL first
#
# DuckDB counts, per expectation, the rows that may break it (the *suspect* rows) over the
# whole relation; Great Expectations then judges only those rows, and every frame of one
# table goes to GX in one batch (one suite). The SQL predicates are exact or wider than
# GX's semantics (never narrower): a row GX would count as unexpected is always suspect,
# so GX's verdict and unexpected count on the suspect rows are those of the whole table.

#: the column that tells the frames of one stacked batch apart
FRAME_TAG = "kam__frame"
#: GX kinds whose unexpected percent is over all rows (they judge missing values)
_NULL_KINDS = frozenset({"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"})
_FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE", "REAL"})
#: a GX batch of at least this many rows is freed at once (gc.collect) after validation
_COLLECT_ROWS = 50_000


@dataclass
class Unit:
    """One check's expectations, evaluated on a frame (``key`` is the caller's id)."""

    key: Any
    name: str
    expectations: list[Any]
    columns: tuple[str, ...] | None = None  # the check's own columns (sample rows); None = all


@dataclass
class Frame:
    """A query whose rows one or more units judge (e.g. a table's default-query checks)."""

    sql: str
    units: list[Unit]


@dataclass
class _Pred:
    unexpected: str  # SQL condition of a suspect row
    missing: str | None  # SQL condition of a row GX counts as missing (None: not reported)
    params: dict[str, Any]


class NotTranslatable(ValueError):
    """An expectation this engine cannot count in SQL (validated the classic way)."""


def sql_first_supported(expectations: Sequence[Any]) -> bool:
    """Whether every expectation can be counted in SQL (row-wise with a known predicate,
    or uniqueness), so that the check can run SQL first."""
    if not expectations:
        return False
    try:
        for e in expectations:
            if _kind(e) == "unique":
                if getattr(e, "row_condition", None) or (getattr(e, "mostly", 1) or 1) < 1:
                    return False
                continue
            _predicate(e, {}, "p")
    except NotTranslatable:
        return False
    return True


def _is_missing(column: str, types: Mapping[str, str]) -> str:
    col = _quote(column)
    if types.get(column, "").upper() in _FLOAT_TYPES:  # pandas takes NaN as missing
        return f"({col} is null or isnan({col}))"
    return f"({col} is null)"


def _predicate(e: Any, types: Mapping[str, str], prefix: str) -> _Pred:
    """The SQL condition of the rows that may break ``e`` (see module notes)."""
    kind = getattr(e, "expectation_type", None)
    if kind not in ROW_WISE_EXPECTATIONS or getattr(e, "row_condition", None):
        raise NotTranslatable(kind)
    if (getattr(e, "mostly", 1) or 1) < 1:
        raise NotTranslatable(f"{kind} with mostly")
    if kind == "expect_column_pair_values_to_be_equal":
        a, b = e.column_A, e.column_B
        ma, mb = _is_missing(a, types), _is_missing(b, types)
        mode = getattr(e, "ignore_row_if", "both_values_are_missing")
        if mode == "both_values_are_missing":
            missing = f"({ma} and {mb})"
        elif mode == "either_value_is_missing":
            missing = f"({ma} or {mb})"
        else:
            raise NotTranslatable(f"{kind} ignore_row_if={mode}")
        return _Pred(f"(not {missing} and {_quote(a)} is distinct from {_quote(b)})", missing, {})
    column = e.column
    col, missing = _quote(column), _is_missing(column, types)
    if kind == "expect_column_values_to_not_be_null":
        return _Pred(missing, None, {})
    if kind == "expect_column_values_to_be_null":
        return _Pred(f"(not {missing})", None, {})
    if kind in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = getattr(e, "value_set", None)
        if not isinstance(values, list | tuple | set) or not values:
            raise NotTranslatable(f"{kind} value_set")
        values = list(values)
        if any(v is None or not isinstance(v, str | int | float | bool) for v in values):
            raise NotTranslatable(f"{kind} value_set")
        if len({type(v) for v in values}) > 1:
            raise NotTranslatable(f"{kind} mixed value_set")
        name = f"{prefix}_set"
        negate = "not " if kind == "expect_column_values_to_be_in_set" else ""
        cond = f"(not {missing} and {negate}list_contains(${name}, {col}))"
        return _Pred(cond, missing, {name: values})
    if kind == "expect_column_values_to_be_between":
        low, high = getattr(e, "min_value", None), getattr(e, "max_value", None)
        if low is None and high is None:
            raise NotTranslatable(f"{kind} without bounds")
        parts, params = [], {}
        for bound, value, strict, op, strict_op in (
            ("min", low, getattr(e, "strict_min", False), "<", "<="),
            ("max", high, getattr(e, "strict_max", False), ">", ">="),
        ):
            if value is None:
                continue
            if isinstance(value, Mapping):  # an evaluation parameter
                raise NotTranslatable(f"{kind} parameter bound")
            params[f"{prefix}_{bound}"] = value
            parts.append(f"{col} {strict_op if strict else op} ${prefix}_{bound}")
        return _Pred(f"(not {missing} and ({' or '.join(parts)}))", missing, params)
    raise NotTranslatable(kind)  # regexes: Python and DuckDB dialects differ


@dataclass
class _Slot:
    """One expectation of a unit in a frame, and what SQL and GX found."""

    frame: int
    unit: Unit
    position: int
    expectation: Any
    pred: _Pred | None = None  # None: uniqueness
    sql_unexpected: int = 0
    missing: int | None = None
    merged: _Merged = field(default_factory=_Merged)
    detail: dict[str, Any] | None = None
    raw: dict[str, Any] | None = None


@dataclass
class _Planned:
    frame: Frame
    columns: list[str]
    total: int = 0
    suspects: int = 0
    first: pd.DataFrame | None = None
    reader: Any = None
    cursor: Any = None
    slots: list[_Slot] = field(default_factory=list)
    batches: int = 0
    seconds: float = 0.0
    error: str | None = None


def _plan(con: duckdb.DuckDBPyConnection, index: int, frame: Frame, chunk_rows: int) -> _Planned:
    """Count a frame's suspect rows per expectation in one DuckDB query and open the
    stream of its suspect rows (the first chunk read). Raises on SQL errors."""
    started = time.perf_counter()
    probe = con.sql(f"select * from ({frame.sql}) limit 0")
    columns = list(probe.columns)
    types = {c: str(t) for c, t in zip(columns, probe.types, strict=True)}
    if FRAME_TAG in columns:
        raise NotTranslatable(f"column {FRAME_TAG} is reserved")
    planned = _Planned(frame, columns)
    params: dict[str, Any] = {}
    aggregates = ["count(*)"]
    for unit in frame.units:
        for position, e in enumerate(unit.expectations):
            slot = _Slot(index, unit, position, e)
            if _kind(e) != "unique":
                slot.pred = _predicate(e, types, f"p{len(params)}_{len(planned.slots)}")
                params.update(slot.pred.params)
                aggregates.append(f"count(*) filter (where {slot.pred.unexpected})")
                if slot.pred.missing is not None:
                    aggregates.append(f"count(*) filter (where {slot.pred.missing})")
            planned.slots.append(slot)
    preds = [s.pred.unexpected for s in planned.slots if s.pred is not None]
    where = " or ".join(preds) if preds else "false"
    aggregates.append(f"count(*) filter (where {where})")
    [counts] = con.execute(
        f"select {', '.join(aggregates)} from ({frame.sql}) f", params
    ).fetchall()
    counts = [int(c) for c in counts]
    planned.total, planned.suspects = counts[0], counts[-1]
    it = iter(counts[1:-1])
    for slot in planned.slots:
        if slot.pred is not None:
            slot.sql_unexpected = next(it)
            if slot.pred.missing is not None:
                slot.missing = next(it)
    if planned.suspects:
        planned.cursor = con.cursor()
        planned.reader = planned.cursor.sql(
            f"select * from ({frame.sql}) f where {where}", params=params
        ).to_arrow_reader(chunk_rows)
        planned.reader = _Chunks(planned.reader, chunk_rows)
        planned.first = planned.reader.next()
    if planned.first is None:
        planned.first = _pandas(probe.to_arrow_table())
    planned.seconds = time.perf_counter() - started
    return planned


class _Chunks:
    """Arrow record batches regrouped into frames of ``chunk_rows`` rows (the last may be
    smaller): DuckDB hands a filtered scan over in many small batches."""

    def __init__(self, reader: Any, chunk_rows: int) -> None:
        self.reader, self.chunk_rows = reader, chunk_rows
        self.pending: list[pa.RecordBatch] = []
        self.rows = 0
        self.done = False

    def next(self) -> pd.DataFrame | None:
        while not self.done and self.rows < self.chunk_rows:
            try:
                batch = self.reader.read_next_batch()
            except StopIteration:
                self.done = True
                break
            if batch.num_rows:
                self.pending.append(batch)
                self.rows += batch.num_rows
        if not self.rows:
            return None
        table = pa.Table.from_batches(self.pending)
        head, rest = table.slice(0, self.chunk_rows), table.slice(self.chunk_rows)
        self.pending, self.rows = rest.to_batches(), rest.num_rows
        return _pandas(head.combine_chunks())

    def close(self) -> None:
        self.pending = []
        self.reader.close()


def _close(planned: _Planned) -> None:
    for thing in (planned.reader, planned.cursor):
        if thing is not None:
            with contextlib.suppress(Exception):
                thing.close()
    planned.reader = planned.cursor = None


def _own_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    return [{c: r.get(c) for c in columns if c in r} for r in rows]


def _validate_batch(
    frames: Sequence[tuple[_Planned, pd.DataFrame]], name: str, stacked: bool
) -> str | None:
    """One GX validation of the row-wise expectations of ``frames`` (stacked in one frame,
    each expectation restricted to its own frame's rows); results merged into the slots.
    Returns the GX error, if any."""
    slots: list[_Slot] = []
    expectations: list[Any] = []
    parts: list[pd.DataFrame] = []
    for planned, df in frames:
        tag = planned.slots[0].frame if planned.slots else 0
        planned.batches += 1
        if stacked:
            df = df.assign(**{FRAME_TAG: tag})
        parts.append(df)
        for slot in planned.slots:
            if slot.pred is None:
                continue
            e = copy.deepcopy(slot.expectation)
            if stacked:
                from great_expectations.expectations.row_conditions import Column

                e.row_condition = Column(FRAME_TAG) == tag
            slots.append(slot)
            expectations.append(e)
    if not expectations:
        return None
    if len(parts) == 1:
        batch = parts[0]
    else:
        batch = pd.concat([p for p in parts if len(p.columns)], ignore_index=True, sort=False)
    part = engine.validate_frame(batch, expectations, name)
    if part.error:
        return part.error
    raw_results = list((part.gx_result or {}).get("results") or [])
    for j, slot in enumerate(slots):
        detail = dict(part.results[j])
        raw = dict(raw_results[j]) if j < len(raw_results) else None
        if raw is not None and isinstance(raw.get("expectation_config"), Mapping):
            config = dict(raw["expectation_config"])
            config["kwargs"] = {
                k: v
                for k, v in dict(config.get("kwargs") or {}).items()
                if k not in engine.ENGINE_KWARGS
            }
            raw["expectation_config"] = config
        own = slot.unit.columns or [c for c in batch.columns if c != FRAME_TAG]
        detail["sample_rows"] = _own_rows(detail.get("sample_rows") or [], own)
        slot.merged.add(detail, raw)
    big = len(batch) >= _COLLECT_ROWS
    del batch, part
    if big:  # GX keeps each batch in reference cycles: free a big one now (a full
        gc.collect()  # collection costs ~0.1 s: not worth it for a few suspect rows)
    return None


def _finish(slot: _Slot, total: int) -> None:
    """The slot's detail: GX's verdict and unexpected count on the suspect rows, the
    element and missing counts of the whole frame from DuckDB."""
    kind = slot.expectation.expectation_type
    if slot.pred is None:
        return  # uniqueness: already complete
    detail, raw = slot.merged.result()
    unexpected = int(detail.get("unexpected_count") or 0)
    missing = slot.missing or 0
    denominator = total if kind in _NULL_KINDS else total - missing
    percent = unexpected / denominator * 100 if denominator > 0 else None
    counts: dict[str, Any] = {
        "element_count": total,
        "unexpected_count": unexpected,
        "unexpected_percent": percent,
    }
    if slot.pred.missing is not None:
        counts["missing_count"] = missing
    detail.update({k: v for k, v in counts.items() if k != "missing_count"})
    raw["result"] = {**dict(raw.get("result") or {}), **counts}
    raw["meta"] = {
        **dict(raw.get("meta") or {}),
        "suspect_rows_by_duckdb": slot.sql_unexpected,
        "evaluated_by": "great_expectations on the suspect rows",
    }
    slot.detail, slot.raw = detail, raw


def validate_relation(
    con: duckdb.DuckDBPyConnection,
    name: str,
    frames: Sequence[Frame],
    chunk_rows: int | None = None,
) -> tuple[dict[Any, CheckOutcome], list[Any]]:
    """Validate the units of one table's frames: DuckDB counts each expectation's suspect
    rows over the whole frame (one aggregate query per frame), uniqueness is counted by
    DuckDB alone, and GX judges the suspect rows of all frames in ONE batch (a frame with
    more than ``chunk_rows`` suspect rows sends the rest in further batches of that size).

    Returns (outcome per unit key, keys of the units this engine could not plan, e.g. a
    query that fails: the caller validates those the classic way).
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    planned: list[_Planned] = []
    fallback: list[Any] = []
    try:
        for i, frame in enumerate(frames):
            try:
                planned.append(_plan(con, i, frame, chunk_rows))
            except (duckdb.Error, NotTranslatable):
                fallback += [u.key for u in frame.units]
        started = time.perf_counter()
        error = None
        if planned:
            error = _validate_batch([(p, p.first) for p in planned], name, len(planned) > 1)
        first_gx = time.perf_counter() - started
        for p in planned:
            p.first = None
            step = time.perf_counter()
            if error is None and p.reader is not None:
                while (df := p.reader.next()) is not None:
                    error = _validate_batch([(p, df)], name, False)
                    if error is not None:
                        break
            _close(p)
            if error is None:
                for slot in p.slots:
                    if slot.pred is None:
                        slot.detail, slot.raw, _ = _unique_sql(con, p.frame.sql, slot.expectation)
                    else:
                        _finish(slot, p.total)
            p.seconds += time.perf_counter() - step
    finally:
        for p in planned:
            _close(p)

    units = sum(len(p.frame.units) for p in planned)
    out: dict[Any, CheckOutcome] = {}
    for p in planned:
        seconds = p.seconds / len(p.frame.units) + (first_gx / units if units else 0.0)
        for unit in p.frame.units:
            outcome = CheckOutcome(
                success=False,
                evaluated=len(unit.expectations),
                name=unit.name,
                rows=p.total,
                seconds=seconds,
            )
            out[unit.key] = outcome
            if error is not None:  # a GX exception fails every check of the batch
                outcome.error = error
                continue
            slots = [s for s in p.slots if s.unit is unit]
            results = [s.detail for s in slots if s.detail is not None]
            outcome.results = results
            outcome.failures = [engine.failure(d) for d in results if not d.get("success")]
            outcome.success = len(results) == len(unit.expectations) and not outcome.failures
            outcome.gx_result = {
                "success": outcome.success,
                "results": [s.raw for s in slots if s.raw is not None],
                "statistics": {
                    "evaluated_expectations": len(results),
                    "successful_expectations": sum(1 for d in results if d.get("success")),
                    "unsuccessful_expectations": len(outcome.failures),
                },
                "meta": {
                    "engine": "duckdb counts; great_expectations on the suspect rows",
                    "chunks": p.batches,
                    "chunk_rows": chunk_rows,
                    "rows": p.total,
                    "suspect_rows": p.suspects,
                    "frames_in_batch": len(planned),
                },
            }
    return out, fallback
