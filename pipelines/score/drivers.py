"""The facts that drove a client's score, in words (docs/rules.md "Churn score", "Reasons")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.score.candidates import _Candidate, _Learned
from pipelines.score.features import LATENESS_FEATURES, feature_matrix
from pipelines.score.measures import RecencyMix

#: groups of the learned models' inputs, each one fact a manager can check: the fact's
#: effect on a client's score is how far the score falls when the group is set to a typical
#: past case's values (the median past case), everything else kept
DRIVER_GROUPS: dict[str, tuple[str, ...]] = {
    "silence": LATENESS_FEATURES,
    "frequency": (
        "log_order_days",
        "log_mean_gap",
        "log_last_gap",
        "log_tenure",
        "log_order_days_90d",
        "log_order_days_180d",
    ),
    "recent_revenue": ("log_revenue_90d", "revenue_trend"),
    "value": (
        "log_revenue_365d",
        "log_avg_order_value",
        "log_first_order_value",
        "log_revenue_to_date",
    ),
}
#: a fact is named when it raises the score's log-odds by at least this much
DRIVER_MIN_EFFECT = 0.1


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _driver_text(group: str, row: Any, typical: dict[str, float]) -> str | None:
    """The fact in words, or None when the client is not on the risky side of a typical
    kept client there (a model can weigh a fact oddly; a manager is told only the facts that
    read as a reason)."""
    recency = int(row.days_since_last_order)
    days = int(row.distinct_order_days)
    if group == "silence":
        if recency <= typical["days_since_last_order"]:
            return None
        interval = row.expected_interval_days
        if days <= 1 or not np.isfinite(interval) or interval <= 0:
            return f"silent {recency} days since its only order"
        return f"silent {recency} days, {row.overdue_ratio:.1f}x its usual {interval:.0f} days"
    if group == "frequency":
        if days >= typical["distinct_order_days"]:
            return None
        return (
            f"{days} order day{'s' if days != 1 else ''} in {int(row.tenure_days)} days "
            f"(clients who stayed: {typical['distinct_order_days']:.0f})"
        )
    if group == "recent_revenue":
        recent = float(0 if pd.isna(row.revenue_90d) else row.revenue_90d)
        prior = float(0 if pd.isna(row.revenue_prior_90d) else row.revenue_prior_90d)
        if recent <= 0 and recency >= 90:
            return None  # the silence says it (and the reason quotes the days silent)
        if recent <= 0 < prior:
            return f"no revenue in the last 90 days ({_money(prior)} the 90 before)"
        if prior > 0 and recent < prior:
            return (
                f"revenue in the last 90 days down {100 * (1 - recent / prior):.0f} % "
                f"({_money(recent)} vs {_money(prior)} the 90 before)"
            )
        return None
    value = float(0 if pd.isna(row.revenue_365d) else row.revenue_365d)
    if value >= typical["revenue_365d"]:
        return None
    return (
        f"revenue in 365 days {_money(value)} "
        f"(clients who stayed: {_money(typical['revenue_365d'])})"
    )


def score_drivers(
    cand: _Candidate,
    today: pd.DataFrame,
    past: pd.DataFrame,
    lost: np.ndarray,
    segments: list[str],
    most: int = 3,
    mix: RecencyMix | None = None,
    slope: float = 1.0,
) -> list[str | None]:
    """Per client of D, the two or three facts that raised its score most above a typical
    kept past case (the median of the past cases that ordered again), ``; ``-joined, or None
    when none raised it by :data:`DRIVER_MIN_EFFECT`. A simple score (recency, the cadence
    rule) has one fact: the silence. A learned score published through a recency ``mix``
    with a weight above 0 is explained as published: each fact's effect on the mix (the
    silence's also through log recency, in proportion to recency's weight), times ``slope``
    (Platt's, so the effects are log-odds of churn_probability as with weight 0)."""
    if len(today) == 0:
        return []
    kept = past[~lost] if len(past) == len(lost) and (~lost).any() else past
    typical = {
        column: float(np.nanmedian(kept[column].to_numpy(dtype=float, na_value=np.nan)))
        if len(kept)
        else float("nan")
        for column in ("days_since_last_order", "distinct_order_days", "revenue_365d")
    }
    rows = list(today.itertuples(index=False))
    if not isinstance(cand, _Learned):
        return [_driver_text("silence", row, typical) for row in rows]
    x, names = feature_matrix(today, segments)
    x_kept, _ = feature_matrix(kept, segments)
    reference = np.nanmedian(x_kept, axis=0) if len(x_kept) else np.zeros(len(names))
    z = cand.link(cand.raw_x(x))
    effects = []
    for group, columns in DRIVER_GROUPS.items():
        idx = [names.index(c) for c in columns if c in names]
        what_if = x.copy()
        what_if[:, idx] = reference[idx]
        effects.append((group, z - cand.link(cand.raw_x(what_if))))
    if mix is not None and mix.w > 0:
        effects = _mixed_effects(effects, mix, slope, today, typical["days_since_last_order"])
    out: list[str | None] = []
    for i, row in enumerate(rows):
        ranked = sorted(((e[i], g) for g, e in effects if e[i] >= DRIVER_MIN_EFFECT), reverse=True)
        texts = [t for _, g in ranked if (t := _driver_text(g, row, typical)) is not None]
        out.append("; ".join(texts[:most]) or None)
    return out


def _mixed_effects(
    effects: list[tuple[str, np.ndarray]],
    mix: RecencyMix,
    slope: float,
    today: pd.DataFrame,
    typical_recency: float,
) -> list[tuple[str, np.ndarray]]:
    """Each fact's effect on the published mix ``(1 - w) * learned + w * recency`` (both
    standardised, docs/rules.md "Recency mix"), in log-odds of churn_probability: the
    learned model's effects shrink by (1 - w); the silence adds recency's own term, how far
    log(1 + days since last order) lies above a typical kept case's (the median)."""
    recency = np.log1p(np.clip(today["days_since_last_order"].to_numpy(dtype=float), 0, None))
    own = mix.w / mix.scale[1] * (recency - np.log1p(max(typical_recency, 0.0)))
    learned = (1 - mix.w) / mix.scale[0]
    return [
        (group, slope * (learned * e + (own if group == "silence" else 0.0)))
        for group, e in effects
    ]
