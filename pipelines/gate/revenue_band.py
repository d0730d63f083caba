"""Batch-level gate: is the as-of day's net revenue within the band learned from history?

The band is learned from the *same weekday* over the previous ``days`` days (default
56 = 8 weeks): ``median ± k × MAD`` (median absolute deviation). When the MAD is 0
(identical history) the half-width falls back to ``mad_floor_share × |median|`` so a
flat history does not make every change an outlier.

Comparable days are those same-weekday days of the window on which at least one order
exists: a weekday the business never trades on, or a history shorter than the window,
gives fewer than ``min_history`` comparable days and the gate is skipped ("not enough
history"), which is a pass. The as-of day itself is always judged, even with no order
(a day with no revenue where history says there should be some is exactly what a
half-loaded batch looks like).

Pure functions over a DataFrame of daily totals; :data:`DAILY_REVENUE_SQL` is the query
over ``marts.fct_orders`` that produces it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from pipelines.settings import declared_default

MIN_HISTORY = 4
MAD_FLOOR_SHARE = 0.10

#: daily totals of the window (as-of day included); ``{start}``/``{end}`` are ISO dates
DAILY_REVENUE_SQL = (
    "select cast(order_date as date) as day, count(*) as orders, "
    "coalesce(sum(net_revenue), 0) as net_revenue "
    "from marts.fct_orders "
    "where cast(order_date as date) between date '{start}' and date '{end}' "
    "group by 1 order by 1"
)


def daily_revenue_sql(as_of: date, days: int) -> str:
    """The query of daily totals for the as-of day and the ``days`` days before it."""
    start = as_of - timedelta(days=int(days))
    return DAILY_REVENUE_SQL.format(start=start.isoformat(), end=as_of.isoformat())


@dataclass(frozen=True)
class RevenueBand:
    """The as-of day's revenue, the band learned from history and the verdict."""

    as_of: date
    value: float  # net revenue of the as-of day (0 when no order)
    history_days: int  # comparable same-weekday days found
    history: dict[str, float]  # comparable day (ISO) -> net revenue
    median: float | None
    mad: float | None
    half_width: float | None  # k × MAD, or the floor when MAD is 0
    low: float | None
    high: float | None
    k: float
    window_days: int
    skipped: str | None  # reason when the gate could not be judged

    @property
    def within(self) -> bool:
        """True when skipped or when ``low <= value <= high``."""
        if self.skipped is not None:
            return True
        assert self.low is not None and self.high is not None
        return self.low <= self.value <= self.high

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat()
        out["within"] = self.within
        return out


def comparable_days(as_of: date, days: int) -> list[date]:
    """Same weekday as ``as_of`` within the previous ``days`` days, oldest first."""
    return [as_of - timedelta(weeks=w) for w in range(int(days) // 7, 0, -1)]


def _daily_totals(daily: pd.DataFrame) -> dict[date, tuple[int, float]]:
    """day -> (orders, net revenue) from a frame with columns day, orders, net_revenue."""
    missing = {"day", "net_revenue"} - set(daily.columns)
    if missing:
        raise ValueError(f"daily revenue frame lacks columns {sorted(missing)}")
    out: dict[date, tuple[int, float]] = {}
    for row in daily.itertuples(index=False):
        day = pd.Timestamp(row.day).date()
        orders = int(getattr(row, "orders", 1) or 0)
        revenue = 0.0 if pd.isna(row.net_revenue) else float(row.net_revenue)
        prev_orders, prev_revenue = out.get(day, (0, 0.0))
        out[day] = (prev_orders + orders, prev_revenue + revenue)
    return out


def compute_band(
    daily: pd.DataFrame,
    as_of: date,
    days: int | None = None,
    k: float | None = None,
    min_history: int = MIN_HISTORY,
    mad_floor_share: float = MAD_FLOOR_SHARE,
) -> RevenueBand:
    """Judge the as-of day's revenue against the same weekdays of the window.

    ``daily`` has one row per day (columns ``day``, ``net_revenue`` and optionally
    ``orders``; days with no row had no order). Rows outside the window are ignored.
    ``days`` and ``k`` default to the settings KAM_REVENUE_BAND_DAYS / KAM_REVENUE_BAND_K.
    """
    days = declared_default("revenue_band_days") if days is None else days
    k = declared_default("revenue_band_k") if k is None else k
    if days < 7:
        raise ValueError(f"revenue band window must be at least 7 days, got {days}")
    if k <= 0:
        raise ValueError(f"revenue band k must be positive, got {k}")
    totals = _daily_totals(daily)
    value = totals.get(as_of, (0, 0.0))[1]
    history = {
        day.isoformat(): totals[day][1]
        for day in comparable_days(as_of, days)
        if totals.get(day, (0, 0.0))[0] > 0
    }
    common = {"as_of": as_of, "value": value, "history": history, "k": float(k)}
    if len(history) < min_history:
        return RevenueBand(
            **common,
            history_days=len(history),
            median=None,
            mad=None,
            half_width=None,
            low=None,
            high=None,
            window_days=int(days),
            skipped=(
                f"not enough history: {len(history)} comparable "
                f"{as_of.strftime('%A')}s with orders in the previous {days} days "
                f"(at least {min_history} needed)"
            ),
        )
    values = pd.Series(list(history.values()), dtype="float64")
    median = float(values.median())
    mad = float((values - median).abs().median())
    half_width = k * mad if mad > 0 else mad_floor_share * abs(median)
    return RevenueBand(
        **common,
        history_days=len(history),
        median=median,
        mad=mad,
        half_width=half_width,
        low=median - half_width,
        high=median + half_width,
        window_days=int(days),
        skipped=None,
    )
