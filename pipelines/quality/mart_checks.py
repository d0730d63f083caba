"""The blocking checks of the marts (``MART_CHECKS``: append to it to add one).

One owner per fact: these GX checks own one row per key and the value sets of the marts
(re-run by a publish materialized alone); the marts' dbt YAML keeps the facts GX does not
check (other not-nulls, relationships, the stricter risk_score values) and the unit tests.
Value sets that come from the sources are the contract's (``pipelines.contract``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

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

SHARE_TOLERANCE = 1e-6


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
        f"revenue_share of ranked clients sums to 1 (± {SHARE_TOLERANCE})",
        "marts.client_abc",
        ("revenue_share", "is_ranked"),
        lambda _ctx: [
            gx().ExpectColumnValuesToBeBetween(
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
