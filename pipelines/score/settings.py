"""The score's settings, result, errors, version and horizon (docs/rules.md "Churn score")."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

#: the version of the score's definition, published with it (bump on any change of rule)
SCORE_VERSION = "churn-score-11"

#: columns the features frame must hold
REQUIRED_COLUMNS = (
    "as_of_date",
    "client_id",
    "segment",
    "days_since_last_order",
    "distinct_order_days",
    "tenure_days",
    "mean_gap_days",
    "last_gap_days",
    "longest_gap_days",
    "expected_interval_days",
    "overdue_ratio",
    "revenue_90d",
    "revenue_prior_90d",
    "revenue_365d",
    "order_days_90d",
    "order_days_180d",
    "revenue_to_date",
    "first_order_revenue",
    "next_order_date",
)

SIMPLE = ("recency", "cadence_rule")
LEARNED = ("logistic", "logistic_rfm", "gradient_boosting", "blend")
CANDIDATES = SIMPLE + LEARNED


class ScoreError(ValueError):
    """The features frame or a setting is unusable (names what and where)."""


@dataclass(frozen=True)
class ScoreSettings:
    """Settings of the score (dbt vars, docs/rules.md "Churn score")."""

    #: days after the as-of date within which "no completed order" counts as lost; None:
    #: derived from the company's cadence (:func:`derive_horizon`)
    horizon_days: int | None = None
    #: a learned candidate must beat recency's validation AUC (mean over the windows) by
    #: this much to be chosen
    margin: float = 0.01
    #: validation windows the choice is judged on (fewer when the past has too few cases)
    windows: int = 3
    #: the churned flag's validated precision target
    churned_precision: float = 0.8
    #: a client is never churned below this many times its usual interval
    churned_min_overdue_ratio: float = 1.5
    #: nor at risk at or below its usual interval
    at_risk_min_overdue_ratio: float = 1.0
    #: each of the fit and the validation cases needs this many lost and this many kept
    min_cases: int = 30
    #: a flag's level must rest on at least this many validation cases
    min_flag_cases: int = 20
    #: at most this many past cases are read (a deterministic sample beyond)
    max_cases: int = 100_000
    #: the random seed of the learned models
    seed: int = 20
    #: where the lost share drifts (:func:`detect_drift`), cases lose half their weight every
    #: this many days back; None: a third of the span of the fit dates; 0: never weighted
    half_life_days: float | None = None
    #: the lost share drifts when its newer half differs from its older half by at least
    #: this much (absolute) ...
    drift_min_change: float = 0.05
    #: ... and this much relative to the older half's share
    drift_min_relative: float = 0.25
    #: where the lost share drifts across the validation dates, recency's weight in the
    #: published mix of a learned model's log-odds and log recency is at least this
    #: (:class:`pipelines.score.measures.RecencyMix`); 0: the fitted weight only
    drift_recency_weight: float = 0.5

    def validate(self) -> None:
        def bad(name: str, value: Any, want: str) -> ScoreError:
            return ScoreError(f"churn score setting {name}={value!r}: {want}")

        if self.horizon_days is not None and not 1 <= self.horizon_days <= 3650:
            raise bad("churn_horizon_days", self.horizon_days, "1 .. 3650 days, or null")
        if not 0 <= self.margin < 0.5:
            raise bad("churn_score_margin", self.margin, "0 <= margin < 0.5")
        if not 0 < self.churned_precision <= 1:
            raise bad("churned_target_precision", self.churned_precision, "in (0, 1]")
        if not self.churned_min_overdue_ratio >= 0:
            raise bad("churned_min_overdue_ratio", self.churned_min_overdue_ratio, ">= 0")
        if not self.at_risk_min_overdue_ratio >= 0:
            raise bad("at_risk_min_overdue_ratio", self.at_risk_min_overdue_ratio, ">= 0")
        if not 1 <= self.windows <= 6:
            raise bad("churn_score_windows", self.windows, "1 .. 6")
        if self.min_cases < 1 or self.min_flag_cases < 1:
            raise bad("churn_score_min_cases", self.min_cases, "at least 1")
        if self.max_cases < 1000:
            raise bad("churn_score_max_cases", self.max_cases, "at least 1000")
        if self.half_life_days is not None and self.half_life_days < 0:
            raise bad("churn_score_half_life_days", self.half_life_days, ">= 0, or null")
        if not (0 <= self.drift_min_change < 1 and self.drift_min_relative >= 0):
            raise bad("churn_score_drift_min_change", self.drift_min_change, "in [0, 1)")
        if not 0 <= self.drift_recency_weight <= 1:
            raise bad("drift_recency_weight", self.drift_recency_weight, "in [0, 1]")


@dataclass
class ScoreResult:
    clients: pd.DataFrame  # one row per client of D
    report: pd.DataFrame  # one row per candidate and validation window
    chosen: str
    horizon_days: int
    horizon_source: str
    churned_level: float | None
    at_risk_level: float | None
    notes: list[str] = field(default_factory=list)


def derive_horizon(frame: pd.DataFrame, as_of: date, settings: ScoreSettings) -> tuple[int, str]:
    """The horizon in days and where it came from.

    The setting wins. Else 3 x the median expected interval of D's clients, rounded up to
    whole weeks, within 28 .. 365 days; and at most half the span of past dates (so that
    passed cases exist to fit and judge on), not below 28.
    """
    if settings.horizon_days is not None:
        return int(settings.horizon_days), "setting churn_horizon_days"
    today = frame[frame["as_of_date"] == as_of]
    interval = float(np.nanmedian(today["expected_interval_days"])) if len(today) else 30.0
    if not math.isfinite(interval) or interval <= 0:
        interval = 30.0
    h = int(min(max(7 * math.ceil(3 * interval / 7), 28), 365))
    why = f"3 x the median usual interval ({interval:.0f} days), whole weeks, 28..365"
    past = frame.loc[frame["as_of_date"] < as_of, "as_of_date"]
    if len(past):
        span = (as_of - min(past)).days
        cap = max(28, 7 * (span // 14))
        if cap < h:
            h = cap
            why += f"; capped at half the {span} days of past dates"
    return h, why


@dataclass(frozen=True)
class Drift:
    """The lost share of the older and the newer half of the fit dates, and the verdict."""

    older_share: float
    newer_share: float
    z: float
    drifted: bool
    half_life_days: float | None
    #: whose cases: "all past cases" or "repeat buyers' cases (2+ order days)"
    group: str = "all past cases"

    def describe(self) -> str:
        if self.drifted and not self.half_life_days:
            return (
                f"the lost share of {self.group} drifted ({self.older_share:.2f} on the older "
                f"half of the past dates, {self.newer_share:.2f} on the newer, z {self.z:.1f}); "
                "not weighted (half-life 0)"
            )
        if not self.drifted:
            return (
                f"no drift in the lost share ({self.older_share:.2f} on the older half of the "
                f"past dates, {self.newer_share:.2f} on the newer): cases weighted equally"
            )
        return (
            f"the lost share of {self.group} drifted ({self.older_share:.2f} on the older "
            f"half of the past dates, {self.newer_share:.2f} on the newer, z {self.z:.1f}): "
            f"recent cases weighted more (half-life {self.half_life_days:.0f} days)"
        )


def _drift_in(cases: pd.DataFrame, lost: np.ndarray, settings: ScoreSettings, group: str) -> Drift:
    values = pd.to_datetime(cases["as_of_date"]).to_numpy()
    unique = np.unique(values)
    if len(unique) < 4 or len(values) == 0:
        share = float(lost.mean()) if len(lost) else 0.0
        return Drift(share, share, 0.0, False, None, group)
    newer = values >= unique[len(unique) // 2]
    p1, p2 = float(lost[~newer].mean()), float(lost[newer].mean())
    ids = cases["client_id"].to_numpy()
    n1, n2 = len(set(ids[~newer])), len(set(ids[newer]))
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = math.sqrt(max(pooled * (1 - pooled) * (1 / n1 + 1 / n2), 1e-12))
    z = (p2 - p1) / se
    change = abs(p2 - p1)
    drifted = (
        change >= settings.drift_min_change
        and change >= settings.drift_min_relative * max(p1, 1e-9)
        and abs(z) >= 2
    )
    half_life = None
    if drifted and settings.half_life_days != 0:
        span = (unique[-1] - unique[0]) / np.timedelta64(1, "D")
        half_life = settings.half_life_days or max(28.0, float(span) / 3)
    return Drift(p1, p2, float(z), drifted, half_life, group)


def detect_drift(cases: pd.DataFrame, lost: np.ndarray, settings: ScoreSettings) -> Drift:
    """Does the lost share drift over the past dates (``cases``: as_of_date, client_id,
    distinct_order_days)?

    The dates are cut in an older and a newer half (by date); the lost share drifts when the
    halves differ by at least ``drift_min_change`` (absolute) and ``drift_min_relative``
    (of the older share), and a two-proportion z-test gives |z| >= 2 with each half's n
    counted as its distinct clients, not its cases (a client's weekly cases share their
    outcome, so counting cases would call a few clients' luck a drift). Tested on all
    cases, then on the repeat buyers' (2+ order days): one-order clients, often half the
    cases and mostly lost, can hide a jump among the resellers (a generated B2B export: all
    cases 0.55 / 0.56, repeat buyers 0.17 / 0.34).
    """
    overall = _drift_in(cases, lost, settings, "all past cases")
    if overall.drifted or "distinct_order_days" not in cases:
        return overall
    repeat = cases["distinct_order_days"].to_numpy(dtype=float) >= 2
    if repeat.any():
        within = _drift_in(
            cases[repeat], lost[repeat], settings, "repeat buyers' cases (2+ order days)"
        )
        if within.drifted:
            return within
    return overall


def _weights(cases: pd.DataFrame, lost: np.ndarray, settings: ScoreSettings) -> np.ndarray:
    """Case weights: equal, unless the lost share drifts (:func:`detect_drift`); then
    halved every ``half_life_days`` back from the newest date."""
    drift = detect_drift(cases, lost, settings)
    dates = cases["as_of_date"]
    if not drift.drifted or not drift.half_life_days:
        return np.ones(len(dates))
    newest = max(dates)
    age = np.array([(newest - d).days for d in dates], dtype=float)
    return np.power(0.5, age / drift.half_life_days)
