"""Data-quality checks with Great Expectations 1.x on pandas DataFrames (framework-free).

GX's SQL datasource is broken on DuckDB, so every check reads only the columns it
needs from the work DuckDB into pandas and validates that frame. A GX exception is a
FAILED check, never a pass.

Memory stays bounded as history grows: row-wise expectations (not null, in set,
between, pair equal, ...) are validated chunk by chunk over the query's result, streamed
from DuckDB in Arrow record batches of ``CHUNK_ROWS`` rows, and their per-chunk results
are summed (success = every chunk succeeds). Uniqueness is computed by DuckDB SQL, which
returns only the duplicated keys; GX then validates the same uniqueness expectation on
a small frame of sample duplicated rows, and the counts come from the SQL.

Checks are declared as :class:`FrameCheck` objects: which asset they concern, the
SQL that selects their frame and the expectations to evaluate. ``raw_checks()`` derives
the raw-layer checks from the source contract; ``MART_CHECKS`` lists the mart checks
(append to it to add one). The Dagster code location turns both into asset checks.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from pipelines.contract import TABLES, Table
from pipelines.revenue_band import MIN_HISTORY, compute_band, daily_revenue_sql

SAMPLE_SIZE = 5
#: rows per chunk validated at once (memory is bounded by this, not by history)
CHUNK_ROWS = 500_000
#: DuckDB's memory cap while checking (beyond it, it spills to a temporary directory)
DUCKDB_MEMORY_LIMIT = "256MB"
SHARE_TOLERANCE = 1e-6

# Date/timestamp columns of the contract that may legitimately lie in the future.
FUTURE_ALLOWED_COLUMNS = frozenset({"due_date", "left_at"})


@dataclass
class CheckOutcome:
    """Result of validating one frame."""

    success: bool
    evaluated: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    name: str = ""
    rows: int = 0
    seconds: float = 0.0
    #: every expectation evaluated, passed or not (see :func:`expectation_details`)
    results: list[dict[str, Any]] = field(default_factory=list)
    #: extra facts a check reports (e.g. the learned revenue band)
    notes: dict[str, Any] = field(default_factory=dict)
    #: why the check was not judged (a pass), e.g. "not enough history"
    skipped: str | None = None
    #: the Great Expectations validation result, as JSON-friendly data
    gx_result: dict[str, Any] | None = None

    def summary(self) -> str:
        if self.error:
            return f"{self.name}: error: {self.error}"
        if self.skipped:
            return f"{self.name}: skipped ({self.skipped})"
        if self.success:
            return f"{self.name}: {self.evaluated} expectations passed on {self.rows} rows"
        parts = [
            f"{f['expectation']}({f.get('column') or ''}): "
            f"{f.get('unexpected_count', '?')} unexpected, e.g. {f.get('sample', [])}"
            for f in self.failures
        ]
        return f"{self.name}: {len(self.failures)}/{self.evaluated} failed: " + "; ".join(parts)


@dataclass(frozen=True)
class CheckContext:
    """Run-time parameters of the checks."""

    as_of: date
    today: date
    revenue_band_days: int = 56
    revenue_band_k: float = 10.0


@dataclass(frozen=True)
class DerivedFrame:
    """What a check derives from its queried frame: the frame to validate, its
    expectations and notes; or ``skipped`` (a reason) when it cannot be judged."""

    frame: pd.DataFrame
    expectations: list
    notes: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


@dataclass(frozen=True)
class FrameCheck:
    """One check: a frame selected from the work DB and the expectations it must meet."""

    asset: tuple[str, ...]  # asset key path, e.g. ("erp", "orders") or ("marts", "dim_clients")
    name: str  # check name, unique per asset
    description: str
    relation: str  # schema.table the check reads
    columns: tuple[str, ...]  # columns of `relation` the check needs
    expectations: Callable[[CheckContext], list] | None = None
    query: Callable[[CheckContext], str] | None = None  # default: select `columns` from relation
    # columns shown beside failing values in sample rows (e.g. the primary key)
    id_columns: tuple[str, ...] = ()
    # builds the validated frame and its expectations from the queried frame
    derive: Callable[[pd.DataFrame, CheckContext], DerivedFrame] | None = None

    def __post_init__(self) -> None:
        if self.expectations is None and self.derive is None:
            raise ValueError(f"check {self.name}: give expectations or derive")

    def sql(self, ctx: CheckContext) -> str:
        if self.query is not None:
            return self.query(ctx)
        cols = list(dict.fromkeys((*self.id_columns, *self.columns)))
        return f"select {', '.join(cols)} from {self.relation}"


# --------------------------------------------------------------------------- GX plumbing


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _plain(value: Any) -> Any:
    """Make a sample value JSON-friendly."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _exception_text(exception_info: Any) -> str | None:
    """The first raised exception in a GX result's exception_info, if any."""
    if not exception_info:
        return None
    infos = [exception_info]
    if isinstance(exception_info, Mapping) and "raised_exception" not in exception_info:
        infos = list(exception_info.values())
    for info in infos:
        get = info.get if isinstance(info, Mapping) else lambda k, i=info: getattr(i, k, None)
        if get("raised_exception"):
            return str(get("exception_message") or "exception raised")
    return None


def _column_of(kwargs: Mapping[str, Any]) -> str:
    return (
        kwargs.get("column")
        or ",".join(kwargs.get("column_list") or [])
        or ",".join(c for c in (kwargs.get("column_A"), kwargs.get("column_B")) if c)
    )


def _sample_rows(df: pd.DataFrame, index: Sequence[Any] | None) -> list[dict[str, Any]]:
    """The frame's rows at GX's ``partial_unexpected_index_list`` (first SAMPLE_SIZE)."""
    if not index:
        return []
    labels = [i for i in list(index)[:SAMPLE_SIZE] if i in df.index]
    return [
        {str(k): _plain(v) for k, v in row.items()}
        for row in df.loc[labels].to_dict(orient="records")
    ]


def expectation_details(res: Any, df: pd.DataFrame) -> dict[str, Any]:
    """One GX ``ExpectationValidationResult`` as plain data, with sample failing rows."""
    config = res.expectation_config
    kwargs = {k: v for k, v in (dict(config.kwargs) if config is not None else {}).items()}
    kwargs.pop("batch_id", None)
    details = res.result or {}
    error = _exception_text(res.exception_info)
    out: dict[str, Any] = {
        "expectation": config.type if config is not None else "unknown",
        "column": _column_of(kwargs),
        "kwargs": _plain(kwargs),
        "success": bool(res.success) and not error,
        "element_count": details.get("element_count"),
        "unexpected_count": details.get("unexpected_count"),
        "unexpected_percent": _plain(details.get("unexpected_percent")),
        "sample": _plain(list(details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]),
        "sample_rows": _sample_rows(df, details.get("partial_unexpected_index_list")),
    }
    if "observed_value" in details:
        out["observed_value"] = _plain(details["observed_value"])
    if error:
        out["error"] = error
    return out


def _failure(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The compact failure record kept in ``CheckOutcome.failures`` (and Dagster metadata)."""
    keys = ("expectation", "column", "unexpected_count", "unexpected_percent", "sample")
    failure = {k: detail.get(k) for k in keys}
    for optional in ("sample_rows", "observed_value", "error"):
        if detail.get(optional) not in (None, []):
            failure[optional] = detail[optional]
    return failure


def validate_frame(df: pd.DataFrame, expectations: Sequence[Any], name: str) -> CheckOutcome:
    """Validate ``df`` against GX expectations; any GX exception makes the outcome fail."""
    started = time.perf_counter()
    outcome = CheckOutcome(success=False, evaluated=len(expectations), name=name, rows=len(df))
    if not expectations:
        outcome.error = "no expectations to evaluate"
        return outcome
    try:
        import great_expectations as gx

        context = _context()
        source_name = f"kam_{uuid.uuid4().hex[:12]}"
        source = context.data_sources.add_pandas(source_name)
        try:
            batch_def = source.add_dataframe_asset(
                name or "frame"
            ).add_batch_definition_whole_dataframe("whole")
            batch = batch_def.get_batch(batch_parameters={"dataframe": df})
            suite = gx.ExpectationSuite(name=f"{name}_{uuid.uuid4().hex[:6]}")
            for expectation in expectations:
                suite.add_expectation(expectation)
            result = batch.validate(suite, result_format="SUMMARY")
        finally:
            with contextlib.suppress(Exception):  # cleanup only
                context.data_sources.delete(source_name)
    except Exception as exc:  # a GX exception is a failed check, never a pass
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.seconds = time.perf_counter() - started
        return outcome

    with contextlib.suppress(Exception):  # the raw GX result is a report extra only
        outcome.gx_result = _plain(result.to_json_dict())
    outcome.evaluated = len(result.results)
    for res in result.results:
        try:
            detail = expectation_details(res, df)
        except Exception as exc:  # unreadable result: a failure, never a pass
            detail = {"expectation": "unknown", "column": "", "success": False}
            detail["error"] = f"cannot read GX result: {type(exc).__name__}: {exc}"
        outcome.results.append(detail)
        if not detail["success"]:
            outcome.failures.append(_failure(detail))
    outcome.success = bool(result.success) and not outcome.failures
    if outcome.evaluated != len(expectations):  # an expectation silently dropped is a failure
        outcome.success = False
        outcome.error = f"{len(expectations)} expectations given, {outcome.evaluated} evaluated"
    outcome.seconds = time.perf_counter() - started
    return outcome


def check_name(check: FrameCheck) -> str:
    """The display name of a check: ``<asset path>:<check name>``."""
    return f"{'.'.join(check.asset)}:{check.name}"


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
    part = validate_frame(frame, [copy.deepcopy(expectation)], name)
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
        return validate_frame(df, expectations, name)

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
                part = validate_frame(
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
    outcome.failures = [_failure(d) for d in results if not d.get("success")]
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


def run_check(
    con: duckdb.DuckDBPyConnection,
    check: FrameCheck,
    ctx: CheckContext,
    chunk_rows: int | None = None,
) -> CheckOutcome:
    """Validate the check's query on ``con`` (errors => failed outcome).

    Checks with expectations stream their rows in chunks (see :func:`validate_query`);
    ``derive`` checks read their (aggregated) frame whole.
    """
    name = check_name(check)
    started = time.perf_counter()
    notes: dict[str, Any] = {}
    try:
        if check.derive is None:
            assert check.expectations is not None
            expectations = check.expectations(ctx)
            outcome = validate_query(con, check.sql(ctx), expectations, name, chunk_rows)
            outcome.seconds = time.perf_counter() - started
            return outcome
        df = con.execute(check.sql(ctx)).df()
        derived = check.derive(df, ctx)
        df, expectations, notes = derived.frame, derived.expectations, dict(derived.notes)
        if derived.skipped is not None:
            return CheckOutcome(
                success=True,
                evaluated=0,
                name=name,
                rows=len(df),
                notes=notes,
                skipped=derived.skipped,
                seconds=time.perf_counter() - started,
            )
    except Exception as exc:
        return CheckOutcome(
            success=False,
            evaluated=0,
            error=f"{type(exc).__name__}: {exc}",
            name=name,
            notes=notes,
            seconds=time.perf_counter() - started,
        )
    outcome = validate_frame(df, expectations, name)
    outcome.notes = notes
    outcome.seconds = time.perf_counter() - started
    return outcome


def _connect_read_only(work_db: Path | str, config: dict[str, str]) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(work_db), read_only=True, config=config)
    except duckdb.Error:
        if not config:
            raise
        # the file is already open in this process with another configuration
        return duckdb.connect(str(work_db), read_only=True)


def run_checks(
    work_db: Path | str,
    checks: Iterable[FrameCheck],
    ctx: CheckContext,
    chunk_rows: int | None = None,
    memory_limit: str | None = None,
) -> list[tuple[FrameCheck, CheckOutcome]]:
    """Run checks against the work DB, opened read-only for the duration only.

    Rows are validated ``chunk_rows`` (default :data:`CHUNK_ROWS`) at a time and DuckDB
    is capped at ``memory_limit`` (default :data:`DUCKDB_MEMORY_LIMIT`), spilling its
    aggregations to a temporary directory beyond it, so memory does not grow with history.
    """
    checks = list(checks)
    if not checks:
        return []
    with tempfile.TemporaryDirectory(prefix="kam_checks_") as spill:
        config = {"memory_limit": memory_limit or DUCKDB_MEMORY_LIMIT, "temp_directory": spill}
        con = _connect_read_only(work_db, config)
        try:
            outcomes = []
            for check in checks:
                cursor = con.cursor()  # a check stopped mid-stream leaves no unfinished result
                try:
                    outcomes.append((check, run_check(cursor, check, ctx, chunk_rows)))
                finally:
                    cursor.close()
            return outcomes
        finally:
            con.close()


# --------------------------------------------------------------------------- raw checks


def _gx():
    import great_expectations as gx

    return gx.expectations


def _end_of(day: date) -> datetime:
    return (
        datetime.combine(day, datetime.min.time()) + timedelta(days=1) - timedelta(microseconds=1)
    )


def _key_expectations(keys: Sequence[str]) -> Callable[[CheckContext], list]:
    def build(_: CheckContext) -> list:
        e = _gx()
        exps: list = [e.ExpectColumnValuesToNotBeNull(column=k) for k in keys]
        if len(keys) == 1:
            exps.append(e.ExpectColumnValuesToBeUnique(column=keys[0]))
        else:
            exps.append(e.ExpectCompoundColumnsToBeUnique(column_list=list(keys)))
        return exps

    return build


def _raw_table_checks(table: Table) -> list[FrameCheck]:
    asset = (table.system, table.name)
    relation = f"valid_{table.system}.{table.name}"  # what dbt reads (raw minus quarantine)
    keys = tuple(table.primary_key)
    checks = [
        FrameCheck(
            asset,
            "keys_unique_not_null",
            f"primary key {', '.join(keys)} is not null and unique",
            relation,
            keys,
            _key_expectations(keys),
        )
    ]
    required = tuple(c.name for c in table.columns if not c.nullable and c.name not in keys)
    if required:
        checks.append(
            FrameCheck(
                asset,
                "required_not_null",
                f"required columns are not null: {', '.join(required)}",
                relation,
                required,
                lambda _ctx, cols=required: [
                    _gx().ExpectColumnValuesToNotBeNull(column=c) for c in cols
                ],
                id_columns=keys,
            )
        )
    # References inside the same source system (cross-system links are not required).
    refs = {
        col: target
        for col, target in table.foreign_keys.items()
        if any(t.system == table.system and t.name == target[0] for t in TABLES)
    }
    if refs:
        cols = tuple(refs)

        def ref_query(
            _ctx: CheckContext, refs=refs, relation=relation, system=table.system, keys=keys
        ) -> str:
            selects = [f"c.{k}" for k in keys if k not in refs]
            joins = []
            for i, (col, (parent, parent_col)) in enumerate(refs.items()):
                selects += [f"c.{col}", f"p{i}.{parent_col} as {col}__ref"]
                joins.append(
                    f"left join (select distinct {parent_col} from valid_{system}.{parent}) p{i} "
                    f"on c.{col} = p{i}.{parent_col}"
                )
            return f"select {', '.join(selects)} from {relation} c " + " ".join(joins)

        checks.append(
            FrameCheck(
                asset,
                "references_exist",
                "referenced rows exist: "
                + ", ".join(f"{c} -> {p}.{pc}" for c, (p, pc) in refs.items()),
                relation,
                cols,
                lambda _ctx, cols=cols: [
                    _gx().ExpectColumnPairValuesToBeEqual(column_A=c, column_B=f"{c}__ref")
                    for c in cols
                ],
                query=ref_query,
                id_columns=keys,
            )
        )
    allowed = {c.name: c.allowed for c in table.columns if c.allowed}
    if allowed:
        checks.append(
            FrameCheck(
                asset,
                "allowed_values",
                "categorical columns hold allowed values: " + ", ".join(allowed),
                relation,
                tuple(allowed),
                lambda _ctx, allowed=allowed: [
                    _gx().ExpectColumnValuesToBeInSet(column=c, value_set=list(v))
                    for c, v in allowed.items()
                ],
                id_columns=keys,
            )
        )
    dated = tuple(
        c.name
        for c in table.columns
        if c.type in ("date", "timestamp") and c.name not in FUTURE_ALLOWED_COLUMNS
    )
    if dated:
        checks.append(
            FrameCheck(
                asset,
                "no_future_dates",
                "no date after the run's wall-clock date: " + ", ".join(dated),
                relation,
                dated,
                lambda ctx, dated=dated: [
                    _gx().ExpectColumnValuesToBeBetween(column=c, max_value=_end_of(ctx.today))
                    for c in dated
                ],
                query=lambda _ctx, dated=dated, relation=relation, keys=keys: (
                    "select "
                    + ", ".join(
                        [k for k in keys if k not in dated]
                        + [f"cast({c} as timestamp) as {c}" for c in dated]
                    )
                    + f" from {relation}"
                ),
                id_columns=keys,
            )
        )
    return checks


def raw_checks(tables: Iterable[Table] = TABLES) -> list[FrameCheck]:
    """The blocking checks of the raw layer, derived from the source contract."""
    return [check for table in tables for check in _raw_table_checks(table)]


# --------------------------------------------------------------------------- mart checks


def _mart(name: str) -> tuple[str, str]:
    return ("marts", name)


def _one_row_per(model: str, keys: Sequence[str]) -> FrameCheck:
    keys = tuple(keys)
    return FrameCheck(
        _mart(model),
        "keys_unique_not_null",
        f"one row per {', '.join(keys)}; keys not null",
        f"marts.{model}",
        keys,
        _key_expectations(keys),
    )


def _in_sets(
    model: str,
    sets: Mapping[str, Sequence[str]],
    name: str = "values_in_sets",
    id_columns: Sequence[str] = ("client_id",),
):
    return FrameCheck(
        _mart(model),
        name,
        "values in their sets: " + ", ".join(sets),
        f"marts.{model}",
        tuple(sets),
        lambda _ctx, sets=dict(sets): [
            _gx().ExpectColumnValuesToBeInSet(column=c, value_set=list(v)) for c, v in sets.items()
        ],
        id_columns=tuple(id_columns),
    )


def _revenue_band_frame(daily: pd.DataFrame, ctx: CheckContext) -> DerivedFrame:
    """The as-of day's revenue as a one-row frame and the band it must lie in."""
    band = compute_band(daily, ctx.as_of, days=ctx.revenue_band_days, k=ctx.revenue_band_k)
    frame = pd.DataFrame(
        {"day": [ctx.as_of.isoformat()], "day_net_revenue": [round(band.value, 2)]}
    )
    notes = {"revenue_band": band.as_dict()}
    if band.skipped is not None:
        return DerivedFrame(frame, [], notes, skipped=band.skipped)
    expectation = _gx().ExpectColumnValuesToBeBetween(
        column="day_net_revenue", min_value=round(band.low, 2), max_value=round(band.high, 2)
    )
    return DerivedFrame(frame, [expectation], notes)


REVENUE_BAND_CHECK = "day_revenue_within_band"


MART_CHECKS: list[FrameCheck] = [
    _one_row_per("dim_clients", ["client_id"]),
    _in_sets("dim_clients", {"declared_tier": ("KA", "key", "general")}),
    _one_row_per("fct_orders", ["order_id"]),
    _in_sets(
        "fct_orders", {"status": ("completed", "cancelled", "returned")}, id_columns=("order_id",)
    ),
    FrameCheck(
        _mart("fct_orders"),
        "no_order_after_as_of",
        "no order_date after the as-of date",
        "marts.fct_orders",
        ("order_date",),
        lambda ctx: [
            _gx().ExpectColumnValuesToBeBetween(column="order_date", max_value=_end_of(ctx.as_of))
        ],
        query=lambda _ctx: (
            "select order_id, cast(order_date as timestamp) as order_date from marts.fct_orders"
        ),
        id_columns=("order_id",),
    ),
    FrameCheck(
        _mart("fct_orders"),
        REVENUE_BAND_CHECK,
        "the as-of day's net revenue lies within median ± k × MAD of the same weekday "
        "over the previous weeks (skipped with fewer than "
        f"{MIN_HISTORY} comparable days)",
        "marts.fct_orders",
        ("order_date", "net_revenue"),
        query=lambda ctx: daily_revenue_sql(ctx.as_of, ctx.revenue_band_days),
        derive=_revenue_band_frame,
    ),
    _one_row_per("client_abc", ["client_id"]),
    _in_sets(
        "client_abc",
        {
            "abc_class": ("A", "B", "C"),
            "abc_class_margin": ("A", "B", "C"),
            "xyz_class": ("X", "Y", "Z"),
        },
    ),
    FrameCheck(
        _mart("client_abc"),
        "revenue_shares_sum_to_one",
        f"revenue_share of ranked clients sums to 1 (± {SHARE_TOLERANCE})",
        "marts.client_abc",
        ("revenue_share", "is_ranked"),
        lambda _ctx: [
            _gx().ExpectColumnValuesToBeBetween(
                column="share_sum", min_value=1 - SHARE_TOLERANCE, max_value=1 + SHARE_TOLERANCE
            )
        ],
        # no row when nothing is ranked (nothing to sum)
        query=lambda _ctx: (
            "select sum(revenue_share) as share_sum from marts.client_abc "
            "where is_ranked having count(*) > 0"
        ),
    ),
    _one_row_per("client_churn_signals", ["client_id"]),
    _in_sets(
        "client_churn_signals",
        {
            "risk_level": ("low", "medium", "high", "critical"),
            "interval_source": ("own_history", "segment_norm", "policy"),
        },
    ),
    FrameCheck(
        _mart("client_churn_signals"),
        "risk_score_in_range",
        "risk_score between 0 and 100",
        "marts.client_churn_signals",
        ("risk_score",),
        lambda _ctx: [
            _gx().ExpectColumnValuesToBeBetween(column="risk_score", min_value=0, max_value=100)
        ],
    ),
    _one_row_per("client_lifecycle", ["client_id"]),
    _in_sets(
        "client_lifecycle",
        {
            "lifecycle_stage": ("acquisition", "development", "maturity", "decline", "churn"),
            "status_group": ("new", "active", "at_risk", "lost", "reactivated"),
        },
    ),
    _one_row_per("client_status_history", ["as_of_date", "client_id"]),
    _one_row_per("winback_candidates", ["client_id"]),
    FrameCheck(
        _mart("winback_candidates"),
        "new_manager_suggested",
        "no win-back candidate keeps the manager who lost it",
        "marts.winback_candidates",
        ("client_id", "suggested_manager_id", "lost_by_manager_id"),
        lambda _ctx: [_gx().ExpectColumnValuesToBeNull(column="client_keeping_manager")],
        query=lambda _ctx: (
            "select client_id, suggested_manager_id, "
            "case when suggested_manager_id = lost_by_manager_id then client_id end "
            "as client_keeping_manager from marts.winback_candidates"
        ),
    ),
    _one_row_per("kam_actions", ["action_id"]),
    _in_sets(
        "kam_actions",
        {
            "action_type": (
                "meet_new_decision_maker",
                "call_key_client_at_risk",
                "resolve_open_complaint",
                "plan_winback",
            )
        },
        id_columns=("action_id",),
    ),
    _one_row_per("key_account_value", ["client_id"]),
    _one_row_per("manager_portfolio", ["manager_id"]),
]


def applicable_checks(
    checks: Iterable[FrameCheck], available: Mapping[str, Iterable[str]]
) -> list[FrameCheck]:
    """Checks whose relation exists in ``available`` (relation -> columns) with every column.

    A relation mapped to an empty column list is taken as "columns unknown": kept.
    """
    out = []
    for check in checks:
        if check.relation not in available:
            continue
        columns = {c.lower() for c in available[check.relation]}
        needed = {c.lower() for c in (*check.columns, *check.id_columns)}
        if columns and not needed <= columns:
            continue
        out.append(check)
    return out


def outcome_metadata(outcome: CheckOutcome, check: FrameCheck | None = None) -> dict[str, Any]:
    """Plain metadata of an outcome (the code location wraps it for Dagster)."""
    meta: dict[str, Any] = {
        "expectations_evaluated": outcome.evaluated,
        "rows": outcome.rows,
        "failed_expectations": len(outcome.failures),
        "failures": outcome.failures,
        "seconds": round(outcome.seconds, 3),
    }
    if check is not None:
        meta["columns"] = ", ".join(check.columns)
    if outcome.error:
        meta["error"] = outcome.error
    if outcome.skipped:
        meta["skipped"] = outcome.skipped
    if outcome.notes:
        meta["notes"] = outcome.notes
    return meta
