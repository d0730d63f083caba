"""The candidate scores: recency, the cadence rule, logistic regression, gradient boosting
and their blend, and how they are fitted (docs/rules.md "Churn score", "Candidates")."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pandas as pd

from pipelines.score.features import AGING_FEATURES, BOOSTING_LEAVES_OUT, feature_matrix
from pipelines.score.settings import ScoreSettings, _weights


class _Candidate:
    name: str

    def fit(self, frame: pd.DataFrame, y: np.ndarray, w: np.ndarray) -> _Candidate:
        return self

    def raw(self, frame: pd.DataFrame) -> np.ndarray:  # higher = more likely lost
        raise NotImplementedError

    @staticmethod
    def link(raw: np.ndarray) -> np.ndarray:
        """The scale Platt scaling is fitted on (a monotone transform of ``raw``)."""
        return np.log1p(np.clip(raw, 0, None))


class _Recency(_Candidate):
    name = "recency"

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["days_since_last_order"].to_numpy(dtype=float)


class _Cadence(_Candidate):
    name = "cadence_rule"

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["overdue_ratio"].to_numpy(dtype=float)


class _Learned(_Candidate):
    def __init__(self, segments: list[str], seed: int) -> None:
        self.segments = segments
        self.seed = seed
        self.model: Any = None

    @staticmethod
    def link(raw: np.ndarray) -> np.ndarray:
        p = np.clip(raw, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        x, _ = feature_matrix(frame, self.segments)
        return self.raw_x(x)

    def raw_x(self, x: np.ndarray) -> np.ndarray:
        """``raw`` on a feature matrix (the drivers' what-if rows)."""
        return self.model.predict_proba(x)[:, 1]


class _Logistic(_Learned):
    """L2-regularised logistic regression on log recency, frequency, tenure, gaps and
    value, each client counting once (:func:`client_weights`). Lateness enters only through
    log recency, so the probability is monotone in lateness exactly when its coefficient is
    positive (checked; else the candidate is dropped)."""

    name = "logistic"
    USED = (
        "log_recency",
        "log_order_days",
        "log_tenure",
        "log_mean_gap",
        "log_order_days_90d",
        "log_order_days_180d",
        "log_revenue_90d",
        "revenue_trend",
        "log_revenue_365d",
        "log_avg_order_value",
        "log_first_order_value",
    )

    def fit(self, frame: pd.DataFrame, y: np.ndarray, w: np.ndarray) -> _Logistic:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x, names = feature_matrix(frame, self.segments)
        self.keep = [i for i, n in enumerate(names) if n in self.USED or n.startswith("segment=")]
        model = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            # strong enough to keep the lateness coefficient stable: the inputs are
            # collinear on a short history (revenue in 90 and 365 days are the same for
            # clients younger than 90 days), and at C=1 a fit on half the clients of Online
            # Retail 2011-06-09 gave recency a negative coefficient (the model was dropped)
            LogisticRegression(C=0.01, max_iter=500),
        )
        # each client once: a client with a long history is a case on every weekly date and
        # outweighed the rest (Online Retail tuning dates 2011-03-09 .. 06-09, published AUC
        # at 183 days: +0.009 on the mean of the 4, -0.002 .. +0.014 each; docs/benchmarks.md)
        weights = client_weights(frame["client_id"], w)
        model.fit(x[:, self.keep], y, logisticregression__sample_weight=weights)
        self.model = model
        coef = model[-1].coef_[0]
        self.monotone = bool(coef[self.keep.index(names.index("log_recency"))] > 0)
        return self

    def raw_x(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(x[:, self.keep])[:, 1]


class _LogisticRFM(_Logistic):
    """The analyst's logistic regression: recency, frequency and money alone (log recency,
    log order days, log revenue to date, and the segment), with the logistic's client
    weights, penalty and monotone check. The windows choose between it and the logistic
    on the company's own past (Online Retail tuning dates 2011-03-09 .. 06-09, published
    AUC at 183 days: +0.0025 on the mean of the 4, -0.0065 .. +0.0145 each;
    docs/benchmarks.md)."""

    name = "logistic_rfm"
    USED = ("log_recency", "log_order_days", "log_revenue_to_date")


class _Boosting(_Learned):
    """scikit-learn's HistGradientBoostingClassifier, constrained to never lower the
    probability as recency, the overdue ratio, recency / longest past gap, the silent share
    or tenure grow (:data:`AGING_FEATURES`: all that grows as a client stays silent)."""

    name = "gradient_boosting"

    def fit(self, frame: pd.DataFrame, y: np.ndarray, w: np.ndarray) -> _Boosting:
        from sklearn.ensemble import HistGradientBoostingClassifier

        x, names = feature_matrix(frame, self.segments)
        # Trees of 7 leaves, each at least 2 % of the cases, without the first-order value:
        # a value fixed per client lets fine trees recognise the clients themselves (the
        # same client's weekly cases share the outcome). Judged on the other half of the
        # clients (Online Retail 2011-06-09 / 2011-05-12 windows): 15 leaves of 50 cases
        # 0.682 / 0.677, 7 leaves of 2 % 0.699 / 0.688, and without the first-order value
        # 0.703 / 0.692.
        self.keep = [i for i, n in enumerate(names) if n not in BOOSTING_LEAVES_OUT]
        # weights (recent cases, where the lost share drifts) by a fixed-seed sample that keeps
        # each case with probability = its weight: sample weights made the fit 8x slower
        # (15 s vs 1.9 s at 60,000 cases), a sample makes it faster
        keep = np.ones(len(y), dtype=bool)
        if len(w) and w.min() < 1:
            keep = np.random.default_rng(self.seed).random(len(y)) < w / w.max()
        self.model = HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=200,
            max_leaf_nodes=7,
            min_samples_leaf=max(50, int(0.02 * keep.sum())),
            l2_regularization=1.0,
            monotonic_cst=[1 if names[i] in AGING_FEATURES else 0 for i in self.keep],
            early_stopping=False,
            random_state=self.seed,
        )
        self.model.fit(x[keep][:, self.keep], y[keep])
        self.monotone = True
        return self

    def raw_x(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(x[:, self.keep])[:, 1]


class _Blend(_Learned):
    """The mean of the logistic and the boosted model's log-odds: the boosted model ranks
    finely inside the past's range, the logistic one carries on beyond it (a client silent
    longer than any past case). Monotone in lateness when both are."""

    name = "blend"

    def fit(self, frame: pd.DataFrame, y: np.ndarray, w: np.ndarray) -> _Blend:
        parts = [_Logistic(self.segments, self.seed), _Boosting(self.segments, self.seed)]
        return self.use([part.fit(frame, y, w) for part in parts])

    def use(self, parts: list[_Candidate]) -> _Blend:
        self.parts = parts
        self.monotone = all(getattr(part, "monotone", True) for part in parts)
        return self

    def raw_x(self, x: np.ndarray) -> np.ndarray:
        return self.combine([part.raw_x(x) for part in self.parts])

    @classmethod
    def combine(cls, part_raws: list[np.ndarray]) -> np.ndarray:
        """The blend's raw score from its parts' raw scores on the same rows (so scores the
        parts already gave are not predicted again: 200 trees per boosted prediction)."""
        z = np.mean([cls.link(raw) for raw in part_raws], axis=0)
        return 1 / (1 + np.exp(-z))


def _fit(
    name: str,
    segments: list[str],
    settings: ScoreSettings,
    cases: pd.DataFrame,
    lost: np.ndarray,
    weights: np.ndarray | None = None,
) -> _Candidate:
    """A candidate fitted on ``cases`` (the simple ones need no fit); ``weights``: the
    cases' weights (:func:`_weights`) when the caller has them already."""
    cand: _Candidate = {
        "recency": lambda: _Recency(),
        "cadence_rule": lambda: _Cadence(),
        "logistic": lambda: _Logistic(segments, settings.seed),
        "logistic_rfm": lambda: _LogisticRFM(segments, settings.seed),
        "gradient_boosting": lambda: _Boosting(segments, settings.seed),
        "blend": lambda: _Blend(segments, settings.seed),
    }[name]()
    cand.fit(cases, lost, _weights(cases, lost, settings) if weights is None else weights)
    return cand


def client_weights(client_ids: pd.Series, w: np.ndarray) -> np.ndarray:
    """The cases' weights ``w`` with each client counted once: a client's weights divided
    by its number of cases, so its cases weigh together what one of its cases weighed (the
    mean of their ``w``; the weights sum to the number of distinct clients, not of cases).
    A client's cases a week apart share their outcome and most of their features; without
    this a client seen on 40 weekly dates weighed 40 times one seen on a single date."""
    _, codes = np.unique(client_ids.astype(str).to_numpy(), return_inverse=True)
    counts = np.bincount(codes)
    return np.asarray(w, dtype=float) / counts[codes]


def client_halves(client_ids: pd.Series) -> np.ndarray:
    """0 or 1 per client, fixed by its id (CRC-32: the same on every run and machine)."""
    return np.array([zlib.crc32(str(c).encode()) % 2 for c in client_ids], dtype=int)
