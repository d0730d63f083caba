"""What a data-quality check is: :class:`FrameCheck`, its context and its outcome.

A check says which asset it concerns, the SQL that selects its frame and the Great
Expectations expectations to evaluate (or a ``derive`` step that aggregates the frame
first). The engine (``engine``, ``streaming``, ``runner``) evaluates them; the raw and
mart checks are declared in ``raw_checks`` and ``mart_checks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from pipelines.run_params import RunParameters
from pipelines.settings import Settings, declared_default

SAMPLE_SIZE = 5
#: rows per chunk validated at once (memory is bounded by this, not by history)
CHUNK_ROWS = 500_000
#: DuckDB's memory cap while checking (beyond it, it spills to a temporary directory)
DUCKDB_MEMORY_LIMIT = "256MB"


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
    revenue_band_days: int = field(default_factory=lambda: declared_default("revenue_band_days"))
    revenue_band_k: float = field(default_factory=lambda: declared_default("revenue_band_k"))
    #: KAM_MAX_LINE_AMOUNT: mart money and quantity values must be finite and below it
    max_line_amount: float = field(default_factory=lambda: declared_default("max_line_amount"))


def check_context(settings: Settings, params: RunParameters) -> CheckContext:
    """The run-time parameters of the checks, from the settings and the run."""
    return CheckContext(
        as_of=params.as_of,
        today=params.today,
        revenue_band_days=settings.revenue_band_days,
        revenue_band_k=settings.revenue_band_k,
        max_line_amount=settings.max_line_amount,
    )


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


def check_name(check: FrameCheck) -> str:
    """The display name of a check: ``<asset path>:<check name>``."""
    return f"{'.'.join(check.asset)}:{check.name}"


def gx():
    """``great_expectations.expectations``, imported when a check is built."""
    import great_expectations

    return great_expectations.expectations


def key_expectations(keys: Sequence[str]) -> Callable[[CheckContext], list]:
    """Expectations of a key: every column not null, the key unique."""

    def build(_: CheckContext) -> list:
        e = gx()
        exps: list = [e.ExpectColumnValuesToNotBeNull(column=k) for k in keys]
        if len(keys) == 1:
            exps.append(e.ExpectColumnValuesToBeUnique(column=keys[0]))
        else:
            exps.append(e.ExpectCompoundColumnsToBeUnique(column_list=list(keys)))
        return exps

    return build


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
