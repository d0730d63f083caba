"""The learned candidates' inputs per case (docs/rules.md "Churn score", "Past cases")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.score.settings import REQUIRED_COLUMNS, ScoreError


def _check_frame(frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ScoreError(f"the features frame lacks the columns {', '.join(missing)}")


def _log1p(values: pd.Series) -> np.ndarray:
    return np.log1p(np.clip(values.to_numpy(dtype=float, na_value=np.nan), 0, None))


def feature_matrix(frame: pd.DataFrame, segments: list[str]) -> tuple[np.ndarray, list[str]]:
    """The learned models' inputs (NaN where unknown; the logistic model imputes)."""
    recency = frame["days_since_last_order"].to_numpy(dtype=float)
    longest = frame["longest_gap_days"].to_numpy(dtype=float, na_value=np.nan)
    days = frame["distinct_order_days"].to_numpy(dtype=float)
    revenue_to_date = frame["revenue_to_date"].to_numpy(dtype=float, na_value=0.0)
    recent = frame["revenue_90d"].to_numpy(dtype=float, na_value=0.0)
    prior = frame["revenue_prior_90d"].to_numpy(dtype=float, na_value=0.0)
    columns = {
        "log_recency": np.log1p(recency),
        "log_overdue_ratio": np.log1p(frame["overdue_ratio"].to_numpy(dtype=float)),
        "log_recency_over_longest_gap": np.log1p(recency / np.where(longest > 0, longest, np.nan)),
        # the share of its life so far the client has been silent: bounded, so it carries
        # over from short past histories to today's longer ones (recency alone does not)
        "silent_share": recency / np.maximum(frame["tenure_days"].to_numpy(dtype=float), 1),
        "log_order_days": np.log(np.maximum(days, 1)),
        "log_tenure": _log1p(frame["tenure_days"]),
        "log_mean_gap": _log1p(frame["mean_gap_days"]),
        "log_last_gap": _log1p(frame["last_gap_days"]),
        # order days in the recent windows: how much of the client's buying is recent
        # (judged on the other half of the clients, Online Retail 2011-06-09's window:
        # logistic 0.716 without, 0.719 with)
        "log_order_days_90d": _log1p(frame["order_days_90d"]),
        "log_order_days_180d": _log1p(frame["order_days_180d"]),
        "log_revenue_90d": np.log1p(np.clip(recent, 0, None)),
        "revenue_trend": np.log1p(np.clip(recent, 0, None)) - np.log1p(np.clip(prior, 0, None)),
        "log_revenue_365d": _log1p(frame["revenue_365d"]),
        "log_avg_order_value": np.log1p(np.clip(revenue_to_date, 0, None) / np.maximum(days, 1)),
        "log_first_order_value": _log1p(frame["first_order_revenue"]),
        # the RFM logistic's money (:class:`_LogisticRFM`)
        "log_revenue_to_date": np.log1p(np.clip(revenue_to_date, 0, None)),
    }
    seg = frame["segment"].astype("string").fillna("").to_numpy()
    for name in segments:
        columns[f"segment={name}"] = (seg == name).astype(float)
    names = list(columns)
    return np.column_stack([columns[n] for n in names]), names


#: features that only grow as a client gets later, everything else equal
LATENESS_FEATURES = (
    "log_recency",
    "log_overdue_ratio",
    "log_recency_over_longest_gap",
    "silent_share",
)


#: features that never fall as a client stays silent longer: lateness, and tenure (days
#: since the first order), which grows day by day with recency (for a one-order client it
#: is recency). The boosted model is constrained on all of them (:class:`_Boosting`): held
#: only in lateness, it lowered the probability of 265-823 of Online Retail's clients as
#: they aged without an order (tuning dates 2011-03-09 .. 06-09; docs/benchmarks.md)
AGING_FEATURES = LATENESS_FEATURES + ("log_tenure",)


#: inputs the boosted model does without: the first-order value is fixed per client and
#: lets trees recognise clients (:class:`_Boosting`); revenue to date is the RFM logistic's
#: alone (the boosted model has revenue in 365 days and the average order value)
BOOSTING_LEAVES_OUT = ("log_first_order_value", "log_revenue_to_date")
