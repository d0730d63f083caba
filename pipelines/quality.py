"""Data-quality checks with Great Expectations 1.x on pandas DataFrames (framework-free).

GX's SQL datasource is broken on DuckDB, so every check reads only the columns it
needs from the work DuckDB into pandas and validates that frame. A GX exception is a
FAILED check, never a pass.

Checks are declared as :class:`FrameCheck` objects: which asset they concern, the
SQL that selects their frame and the expectations to evaluate. ``raw_checks()`` derives
the raw-layer checks from the source contract; ``MART_CHECKS`` lists the mart checks
(append to it to add one). The Dagster code location turns both into asset checks.
"""

from __future__ import annotations

import contextlib
import math
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

from pipelines.contract import TABLES, Table
from pipelines.raw_schema import raw_table_name

SAMPLE_SIZE = 5
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

    def summary(self) -> str:
        if self.error:
            return f"{self.name}: error: {self.error}"
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


@dataclass(frozen=True)
class FrameCheck:
    """One check: a frame selected from the work DB and the expectations it must meet."""

    asset: tuple[str, ...]  # asset key path, e.g. ("erp", "orders") or ("marts", "dim_clients")
    name: str  # check name, unique per asset
    description: str
    relation: str  # schema.table the check reads
    columns: tuple[str, ...]  # columns of `relation` the check needs
    expectations: Callable[[CheckContext], list]
    query: Callable[[CheckContext], str] | None = None  # default: select `columns` from relation

    def sql(self, ctx: CheckContext) -> str:
        if self.query is not None:
            return self.query(ctx)
        return f"select {', '.join(self.columns)} from {self.relation}"


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

    outcome.evaluated = len(result.results)
    for res in result.results:
        error = _exception_text(res.exception_info)
        if res.success and not error:
            continue
        config = res.expectation_config
        kwargs = dict(config.kwargs) if config is not None else {}
        details = res.result or {}
        failure: dict[str, Any] = {
            "expectation": config.type if config is not None else "unknown",
            "column": kwargs.get("column")
            or ",".join(kwargs.get("column_list") or [])
            or ",".join(c for c in (kwargs.get("column_A"), kwargs.get("column_B")) if c),
            "unexpected_count": details.get("unexpected_count"),
            "sample": _plain(list(details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]),
        }
        if "observed_value" in details:
            failure["observed_value"] = _plain(details["observed_value"])
        if error:
            failure["error"] = error
        outcome.failures.append(failure)
    outcome.success = bool(result.success) and not outcome.failures
    if outcome.evaluated != len(expectations):  # an expectation silently dropped is a failure
        outcome.success = False
        outcome.error = f"{len(expectations)} expectations given, {outcome.evaluated} evaluated"
    outcome.seconds = time.perf_counter() - started
    return outcome


def run_check(con: duckdb.DuckDBPyConnection, check: FrameCheck, ctx: CheckContext) -> CheckOutcome:
    """Read the check's frame from ``con`` and validate it (errors => failed outcome)."""
    name = f"{'.'.join(check.asset)}:{check.name}"
    started = time.perf_counter()
    try:
        df = con.execute(check.sql(ctx)).df()
        expectations = check.expectations(ctx)
    except Exception as exc:
        return CheckOutcome(
            success=False,
            evaluated=0,
            error=f"{type(exc).__name__}: {exc}",
            name=name,
            seconds=time.perf_counter() - started,
        )
    outcome = validate_frame(df, expectations, name)
    outcome.seconds = time.perf_counter() - started
    return outcome


def run_checks(
    work_db: Path | str, checks: Iterable[FrameCheck], ctx: CheckContext
) -> list[tuple[FrameCheck, CheckOutcome]]:
    """Run checks against the work DB, opened read-only for the duration only."""
    checks = list(checks)
    if not checks:
        return []
    con = duckdb.connect(str(work_db), read_only=True)
    try:
        return [(check, run_check(con, check, ctx)) for check in checks]
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
    relation = raw_table_name(table)
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

        def ref_query(_ctx: CheckContext, refs=refs, relation=relation, system=table.system) -> str:
            selects, joins = [], []
            for i, (col, (parent, parent_col)) in enumerate(refs.items()):
                selects += [f"c.{col}", f"p{i}.{parent_col} as {col}__ref"]
                joins.append(
                    f"left join (select distinct {parent_col} from raw_{system}.{parent}) p{i} "
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
                query=lambda _ctx, dated=dated, relation=relation: (
                    "select "
                    + ", ".join(f"cast({c} as timestamp) as {c}" for c in dated)
                    + f" from {relation}"
                ),
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


def _in_sets(model: str, sets: Mapping[str, Sequence[str]], name: str = "values_in_sets"):
    return FrameCheck(
        _mart(model),
        name,
        "values in their sets: " + ", ".join(sets),
        f"marts.{model}",
        tuple(sets),
        lambda _ctx, sets=dict(sets): [
            _gx().ExpectColumnValuesToBeInSet(column=c, value_set=list(v)) for c, v in sets.items()
        ],
    )


MART_CHECKS: list[FrameCheck] = [
    _one_row_per("dim_clients", ["client_id"]),
    _in_sets("dim_clients", {"declared_tier": ("KA", "key", "general")}),
    _one_row_per("fct_orders", ["order_id"]),
    _in_sets("fct_orders", {"status": ("completed", "cancelled", "returned")}),
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
            "select cast(order_date as timestamp) as order_date from marts.fct_orders"
        ),
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
            "select case when suggested_manager_id = lost_by_manager_id then client_id end "
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
        if columns and not {c.lower() for c in check.columns} <= columns:
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
    return meta
