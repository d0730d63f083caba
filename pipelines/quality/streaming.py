"""Validating a query's result with bounded memory (chunks streamed from DuckDB).

Row-wise expectations (not null, in set, between, pair equal, ...) are validated chunk by
chunk over the query's result, streamed from DuckDB in Arrow record batches, and their
per-chunk results are summed (success = every chunk succeeds). Uniqueness is computed by
DuckDB SQL, which returns only the duplicated keys; GX then validates the same uniqueness
expectation on a small frame of sample duplicated rows, and the counts come from the SQL.
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


def _validate_unique(
    con: duckdb.DuckDBPyConnection, sql: str, expectation: Any, name: str
) -> tuple[dict[str, Any], dict[str, Any] | None, int]:
    """A uniqueness expectation: DuckDB counts the duplicated rows over the whole
    relation; GX validates the same expectation on a small frame holding two rows of each
    of the first SAMPLE_SIZE duplicated keys. Returns (detail, raw GX result, rows)."""
    cols, judged = _unique_columns(expectation)
    key = ", ".join(_quote(c) for c in cols)
    dups = f"select {key}, count(*) as n__ from f where {judged} group by {key} having count(*) > 1"
    [(total, judged_rows, unexpected)] = con.execute(
        f"with f as ({sql}), d as ({dups}) select (select count(*) from f), "
        f"(select count(*) from f where {judged}), (select coalesce(sum(n__), 0) from d)"
    ).fetchall()
    unexpected = int(unexpected)
    if unexpected:
        on = " and ".join(f"f.{_quote(c)} is not distinct from d.{_quote(c)}" for c in cols)
        fkey = ", ".join(f"f.{_quote(c)}" for c in cols)
        sample_sql = (
            f"with f as ({sql}), d as ({dups} order by {key} limit {SAMPLE_SIZE}) "
            f"select f.* from f semi join d on {on} "
            f"qualify row_number() over (partition by {fkey}) <= 2 order by {fkey}"
        )
        frame = _pandas(con.sql(sample_sql).to_arrow_table())
    else:
        frame = _pandas(con.sql(f"select * from ({sql}) f limit 0").to_arrow_table())
    part = engine.validate_frame(frame, [copy.deepcopy(expectation)], name)
    raw = None
    if part.gx_result and part.gx_result.get("results"):
        raw = dict(part.gx_result["results"][0])
    if part.error or not part.results:
        detail = {"expectation": expectation.expectation_type, "column": ",".join(cols)}
        detail.update(success=False, error=part.error or "no GX result")
        return detail, raw, int(total)
    detail = dict(part.results[0])
    counts = {
        "element_count": int(total),
        "unexpected_count": unexpected,
        "unexpected_percent": unexpected / judged_rows * 100 if judged_rows else None,
    }
    detail.update(counts)
    # GX must fail on the duplicated rows exactly when SQL found some
    detail["success"] = bool(detail.get("success")) and not unexpected and not detail.get("error")
    if raw is not None:
        raw["success"] = detail["success"]
        raw["result"] = {**dict(raw.get("result") or {}), **counts}
        raw["result"].pop("partial_unexpected_index_list", None)
    return detail, raw, int(total)


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
            details[i], raws[i], total = _validate_unique(con, sql, expectations[i], name)
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
