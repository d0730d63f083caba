"""The blocking checks of the marts (``MART_CHECKS``: append to it to add one).

One owner per fact: these GX checks own one row per key and the value sets of the marts
(re-run by a publish materialized alone); the marts' dbt YAML keeps the facts GX does not
check (other not-nulls, relationships, the stricter risk_score values) and the unit tests.
Value sets that come from the sources are the contract's (``pipelines.contract``).

Every mart with a money or quantity column (a floating or decimal ``data_type`` in its
dbt YAML, the contract dbt enforces) also gets ``amounts_finite_and_plausible``: each
such value finite and below ``KAM_MAX_LINE_AMOUNT`` in magnitude, so an amount that
escaped the line-level quarantine (a sum overflowing, a division by almost zero) blocks
the publish instead of reaching BI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import yaml

from pipelines.contract import ORDER_STATUSES, TIERS
from pipelines.gate.revenue_band import MIN_HISTORY, compute_band, daily_revenue_sql
from pipelines.quality.checks import (
    CheckContext,
    DerivedFrame,
    FrameCheck,
    gx,
    key_expectations,
)
from pipelines.quality.raw_checks import end_of
from pipelines.score.settings import CANDIDATES

SHARE_TOLERANCE = 1e-6
DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"
MARTS_SCHEMA = "marts"
#: dbt data types of money and quantity columns (DuckDB names, lower case, prefixes)
NUMERIC_DATA_TYPES = ("double", "float", "real", "decimal", "numeric")
PLAUSIBLE_AMOUNTS_CHECK = "amounts_finite_and_plausible"
#: the five lifecycle stages (docs/rules.md, Lifecycle)
LIFECYCLE_STAGES = ("acquisition", "development", "maturity", "decline", "churn")


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
        key_expectations(keys),
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
            gx().ExpectColumnValuesToBeInSet(column=c, value_set=list(v)) for c, v in sets.items()
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
    expectation = gx().ExpectColumnValuesToBeBetween(
        column="day_net_revenue", min_value=round(band.low, 2), max_value=round(band.high, 2)
    )
    return DerivedFrame(frame, [expectation], notes)


REVENUE_BAND_CHECK = "day_revenue_within_band"


def _mart_folders(project_dir: Path, config: Mapping, path: tuple[str, ...] = ()) -> list[Path]:
    """Model folders whose ``+schema`` is ``marts`` in dbt_project.yml's ``models:``."""
    folders = []
    if config.get("+schema") == MARTS_SCHEMA:
        folders.append(project_dir.joinpath("models", *path))
    for key, sub in config.items():
        if isinstance(sub, Mapping) and not key.startswith("+"):
            folders += _mart_folders(project_dir, sub, (*path, key))
    return folders


def mart_numeric_columns(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, tuple[str, ...]]:
    """Every mart (a model in a folder of schema ``marts``) -> its columns whose declared
    ``data_type`` is floating or decimal: the money, quantity and share columns."""
    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text())
    name = project["name"]
    folders = _mart_folders(project_dir, (project.get("models") or {}).get(name) or {})
    out: dict[str, tuple[str, ...]] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*.yml")):
            for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
                cols = tuple(
                    c["name"]
                    for c in model.get("columns") or []
                    if str(c.get("data_type", "")).lower().startswith(NUMERIC_DATA_TYPES)
                )
                if cols:
                    out[model["name"]] = cols
    if not out:
        raise FileNotFoundError(
            f"no mart with a numeric column declared under {project_dir}: the dbt project "
            "is missing or its marts declare no data_type"
        )
    return out


def _flag_implausible(column: str, bound: float) -> str:
    """The value as text when it is NaN, infinite or at least ``bound`` in magnitude, else
    NULL. Text, because pandas (and so Great Expectations) takes a NaN double as missing."""
    c = f'"{column}"'
    return (
        f"case when not (abs(cast({c} as double)) < {bound!r}) then cast({c} as varchar) end as {c}"
    )


def _plausible_amounts(model: str, columns: Sequence[str], keys: Sequence[str]) -> FrameCheck:
    columns, keys = tuple(columns), tuple(keys)

    def query(ctx: CheckContext) -> str:
        flagged = [_flag_implausible(c, ctx.max_line_amount) for c in columns]
        return f"select {', '.join([*keys, *flagged])} from marts.{model}"

    return FrameCheck(
        _mart(model),
        PLAUSIBLE_AMOUNTS_CHECK,
        "every money and quantity value finite and below KAM_MAX_LINE_AMOUNT in magnitude: "
        + ", ".join(columns),
        f"marts.{model}",
        columns,
        # the query keeps only the implausible values (as text): each column must be empty
        lambda _ctx: [gx().ExpectColumnValuesToBeNull(column=c) for c in columns],
        query=query,
        id_columns=keys,
    )


def plausible_amount_checks(
    checks: Sequence[FrameCheck], numeric: Mapping[str, Sequence[str]] | None = None
) -> list[FrameCheck]:
    """``amounts_finite_and_plausible`` of every mart with a numeric column; sample rows
    carry the mart's key (that of its ``keys_unique_not_null`` check in ``checks``)."""
    numeric = mart_numeric_columns() if numeric is None else numeric
    keys = {c.asset[1]: c.columns for c in checks if c.name == "keys_unique_not_null"}
    return [_plausible_amounts(m, cols, keys.get(m, ())) for m, cols in numeric.items()]


MART_CHECKS: list[FrameCheck] = [
    _one_row_per("dim_clients", ["client_id"]),
    _in_sets("dim_clients", {"declared_tier": TIERS}),
    _one_row_per("fct_orders", ["order_id"]),
    _in_sets("fct_orders", {"status": ORDER_STATUSES}, id_columns=("order_id",)),
    FrameCheck(
        _mart("fct_orders"),
        "no_order_after_as_of",
        "no order_date after the as-of date",
        "marts.fct_orders",
        ("order_date",),
        lambda ctx: [
            gx().ExpectColumnValuesToBeBetween(column="order_date", max_value=end_of(ctx.as_of))
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
        f"revenue_share of ranked clients sums to 1 (± {SHARE_TOLERANCE}), a finite sum "
        "(a NaN share makes the sum NaN, which Great Expectations would take as missing)",
        "marts.client_abc",
        ("revenue_share", "is_ranked"),
        lambda _ctx: [
            gx().ExpectColumnValuesToNotBeNull(column="share_sum"),
            gx().ExpectColumnValuesToBeBetween(
                column="share_sum", min_value=1 - SHARE_TOLERANCE, max_value=1 + SHARE_TOLERANCE
            ),
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
    _one_row_per("client_lifecycle", ["client_id"]),
    _in_sets(
        "client_lifecycle",
        {
            "lifecycle_stage": ("acquisition", "development", "maturity", "decline", "churn"),
            "status_group": ("new", "active", "at_risk", "lost", "reactivated"),
        },
    ),
    _one_row_per("client_status_history", ["as_of_date", "client_id"]),
    _one_row_per("client_stage_transitions", ["client_id", "transition_date"]),
    _in_sets("client_stage_transitions", {"to_stage": LIFECYCLE_STAGES}),
    _one_row_per("winback_candidates", ["client_id"]),
    FrameCheck(
        _mart("winback_candidates"),
        "new_manager_suggested",
        "no win-back candidate keeps the manager who lost it",
        "marts.winback_candidates",
        ("client_id", "suggested_manager_id", "lost_by_manager_id"),
        lambda _ctx: [gx().ExpectColumnValuesToBeNull(column="client_keeping_manager")],
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
# issue 10, churn from evidence: the backtest marts and churn_probability
_SOURCES = ("policy", "default")
MART_CHECKS += [
    _one_row_per("signal_backtest", ["period", "segment", "is_all_segments", "flag"]),
    _in_sets(
        "signal_backtest",
        {
            "flag": (
                "churned",
                "at_risk",
                "churned_or_at_risk",
                "volume_drop",
                "decision_maker_left",
            )
        },
        id_columns=("period", "segment"),
    ),
    _one_row_per("segment_churn_definition", ["segment", "order_days_band"]),
    _in_sets(
        "segment_churn_definition",
        {"at_risk_ratio_source": _SOURCES, "churn_ratio_source": _SOURCES},
        id_columns=("segment", "order_days_band"),
    ),
    FrameCheck(
        _mart("client_churn_signals"),
        "churn_probability_between_0_and_1",
        "churn_probability between 0 and 1 (NULL: not judged)",
        "marts.client_churn_signals",
        ("client_id", "churn_probability"),
        lambda _ctx: [
            gx().ExpectColumnValuesToBeBetween(column="churn_probability", min_value=0, max_value=1)
        ],
        id_columns=("client_id",),
    ),
]
# issue 20, the churn score's proof: one row per candidate and window, exactly one candidate
# chosen (on each of its windows' rows), AUCs in [0, 1]
MART_CHECKS += [
    _one_row_per("churn_model_report", ["candidate", "validation_window"]),
    _in_sets(
        "churn_model_report",
        {"candidate": CANDIDATES},
        id_columns=("validation_window",),
    ),
    FrameCheck(
        _mart("churn_model_report"),
        "one_chosen_score_auc_between_0_and_1",
        "exactly one candidate is chosen (on each of its windows' rows); auc between 0 and 1 "
        "(NULL: not measured)",
        "marts.churn_model_report",
        ("candidate", "auc", "is_chosen"),
        lambda _ctx: [
            gx().ExpectColumnValuesToBeBetween(column="auc", min_value=0, max_value=1),
            gx().ExpectColumnValuesToNotBeNull(column="is_chosen"),
            gx().ExpectColumnValuesToBeBetween(column="chosen_rows", min_value=1, max_value=1),
        ],
        # row-wise (the benchmark's floor runs row-wise expectations as SQL): every row
        # carries the number of chosen rows
        query=lambda _ctx: (
            "select candidate, auc, is_chosen, (select count(distinct candidate) from "
            "marts.churn_model_report where is_chosen) as chosen_rows "
            "from marts.churn_model_report"
        ),
        id_columns=("candidate",),
    ),
]
MART_CHECKS += plausible_amount_checks(MART_CHECKS)
