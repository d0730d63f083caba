"""Measures and maps on the validation window: ROC AUC, calibration error, Platt scaling,
the flag levels by validated precision, the quantile map and the mix of a learned score
with recency (docs/rules.md "Churn score")."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd


def roc_auc(score: np.ndarray, lost: np.ndarray) -> float | None:
    """ROC AUC with ties counted one half; None when a class is empty."""
    lost = lost.astype(bool)
    n_pos = int(lost.sum())
    n_neg = len(lost) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[lost].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration_error(p: np.ndarray, lost: np.ndarray, bins: int = 10) -> float | None:
    """Expected calibration error over ``bins`` equal-count bins of p."""
    if len(p) == 0:
        return None
    order = np.argsort(p, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, min(bins, len(p))):
        if len(chunk):
            error += len(chunk) * abs(float(p[chunk].mean()) - float(lost[chunk].mean()))
    return error / len(p)


@dataclass(frozen=True)
class Platt:
    a: float
    b: float

    @staticmethod
    def fit(z: np.ndarray, lost: np.ndarray) -> Platt:
        from sklearn.linear_model import LogisticRegression

        if lost.min() == lost.max():
            share = float(lost.mean())
            share = min(max(share, 1e-3), 1 - 1e-3)
            return Platt(0.0, math.log(share / (1 - share)))
        model = LogisticRegression(C=1e6, max_iter=1000).fit(z.reshape(-1, 1), lost)
        return Platt(float(model.coef_[0][0]), float(model.intercept_[0]))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.a * z + self.b)))


#: the normal quantile of the one-sided 95 % Wilson lower bound on a flag's precision
PRECISION_Z = 1.645


def wilson_lower(share: np.ndarray, n: np.ndarray, z: float = PRECISION_Z) -> np.ndarray:
    """The Wilson score lower bound of a share observed on n cases (n >= 1), elementwise."""
    share, n = np.asarray(share, dtype=float), np.asarray(n, dtype=float)
    centre = share + z * z / (2 * n)
    spread = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


class FlagLevel(NamedTuple):
    """A flag's probability level and what it rests on: the validated precision of the cases
    at or above it, their number, the distinct clients among them, and the precision's
    lower bound (Wilson, one-sided 95 %, over the distinct clients)."""

    level: float
    precision: float
    cases: int
    clients: int
    lower: float


def _levels(
    p: np.ndarray, lost: np.ndarray, eligible: np.ndarray, clients: np.ndarray | None
) -> list[FlagLevel]:
    """Every possible level over the eligible cases (highest first, each at the end of a run
    of equal probabilities: a level takes all of them) and what it rests on."""
    idx = np.where(eligible)[0]
    order = idx[np.argsort(-p[idx], kind="stable")]
    hits = np.cumsum(lost[order])
    counts = np.arange(1, len(order) + 1)
    precision = hits / counts
    distinct = (
        np.cumsum(~pd.Series(clients[order]).duplicated().to_numpy())
        if clients is not None
        else counts
    )
    lower = wilson_lower(precision, distinct)
    ps = p[order]
    last_of_run = np.append(ps[1:] != ps[:-1], True) if len(ps) else np.zeros(0, dtype=bool)
    return [
        FlagLevel(
            float(ps[k]), float(precision[k]), int(counts[k]), int(distinct[k]), float(lower[k])
        )
        for k in np.where(last_of_run)[0]
    ]


def lowest_level(
    p: np.ndarray,
    lost: np.ndarray,
    eligible: np.ndarray,
    target: float,
    min_cases: int,
    clients: np.ndarray | None = None,
) -> FlagLevel | None:
    """The lowest probability level L such that eligible cases with p >= L are lost at
    least ``target`` of the time beyond doubt: the Wilson lower bound of their precision
    reaches ``target``, counting each distinct client once (a client is a case on every
    weekly date of the windows, ~13 cases per window, that mostly share one outcome: the
    point precision on 67 cases of 52 clients, 0.81, claimed 0.8 on Online Retail
    2011-06-09 and realized 0.78), resting on ``min_cases`` cases. ``clients``: each case's
    client (None: every case its own client)."""
    ok = [f for f in _levels(p, lost, eligible, clients) if f.lower >= target]
    ok = [f for f in ok if f.cases >= min_cases]
    return ok[-1] if ok else None


def lowest_band(
    p: np.ndarray,
    lost: np.ndarray,
    eligible: np.ndarray,
    target: float,
    above: float,
    min_cases: int,
    clients: np.ndarray | None = None,
) -> FlagLevel | None:
    """The lowest probability level L such that the eligible cases with p >= L meet two
    separate conditions, on ``min_cases``+ cases: their point precision reaches ``target``
    (how much more often they are lost), and the Wilson lower bound of that precision, each
    distinct client counted once, is above ``above`` (that they are lost more often than
    ``above`` beyond doubt). The at-risk band's rule (docs/rules.md "Flags"): requiring the
    lower bound itself to reach the target stacked the doubt on the margin and left Online
    Retail 2011-09-09 with no band (churn-score-7)."""
    ok = [
        f
        for f in _levels(p, lost, eligible, clients)
        if f.precision >= target and f.lower > above and f.cases >= min_cases
    ]
    return ok[-1] if ok else None


def closest_level(
    p: np.ndarray,
    lost: np.ndarray,
    eligible: np.ndarray,
    min_cases: int,
    clients: np.ndarray | None = None,
) -> FlagLevel | None:
    """The level on ``min_cases``+ cases with the highest lower bound of its precision (what
    came closest to a target none reached)."""
    levels = [f for f in _levels(p, lost, eligible, clients) if f.cases >= min_cases]
    return max(levels, key=lambda f: f.lower) if levels else None


def quantile_map(x: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each x at its quantile of ``source`` mapped to the same quantile of ``target``
    (piecewise linear, monotone); beyond source's range, linearly with slope 1 (so clients
    beyond the window's range keep their order instead of tying at its end)."""
    src = np.sort(source)
    dst = _linear_quantiles(target, np.linspace(0, 1, len(src)))
    src, first = np.unique(src, return_index=True)
    dst = dst[first]
    if len(src) < 2:
        return x - (src[0] if len(src) else 0) + (dst[0] if len(dst) else 0)
    out = np.interp(x, src, dst)
    out = np.where(x < src[0], dst[0] + (x - src[0]), out)
    return np.where(x > src[-1], dst[-1] + (x - src[-1]), out)


def _linear_quantiles(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(values, q)`` (its default, linear method), bit for bit, from one sort.

    np.quantile partitions the array around every asked index: with as many quantiles as
    cases that costs O(n x len(q)); at 20,000 clients (~40,000 validation cases) the quantile
    map took 1.8 of score_clients' ~8 CPU s (5 s at 100,000 x 60,000), this ~1 ms. Same
    indexes, weights and interpolation as numpy 2's ``_quantile`` / ``_lerp``, so the
    result is identical (tests/pipelines/test_score.py compares them)."""
    ordered = np.sort(values)
    n = len(ordered)
    if n == 0 or np.isnan(ordered[-1]):  # empty or NaN: numpy's own answer
        return np.quantile(values, q)
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = following[above] = -1
    below = virtual < 0
    previous[below] = following[below] = 0
    previous_i, following_i = previous.astype(np.intp), following.astype(np.intp)
    gamma = virtual - previous_i
    a, b = ordered[previous_i], ordered[following_i]
    diff = b - a
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def _cross_calibration_error(z: np.ndarray, lost: np.ndarray, dates: pd.Series) -> float | None:
    """Calibration error of Platt scaling (of ``z``, the published score's scale) fitted on
    every other window date and judged on the others (and the other way round)."""
    order = {d: i for i, d in enumerate(sorted(dates.unique()))}
    half = np.array([order[d] % 2 for d in dates])
    p = np.full(len(z), np.nan)
    for part in (0, 1):
        train, test = half != part, half == part
        if not train.any() or not test.any():
            return calibration_error(Platt.fit(z, lost)(z), lost)
        p[test] = Platt.fit(z[train], lost[train])(z[test])
    return calibration_error(p, lost)


@dataclass(frozen=True)
class RecencyMix:
    """The published ranking of a learned model: its log-odds and log(1 + recency), each
    standardised on the validation cases, mixed ``(1 - w) * learned + w * recency``.

    Monotone in lateness (the learned model is, and w >= 0). ``w`` is the weight of recency
    in a logistic regression of the outcome on the two standardised scores over the
    validation cases (0 when recency adds nothing there), at least ``floor`` (set when the
    lost share drifts across the validation dates: the learned between-group levels are
    then stale by D, recency has no levels to go stale).
    """

    w: float
    fitted_w: float
    floor: float
    mean: tuple[float, float]
    scale: tuple[float, float]

    @staticmethod
    def fit(z: np.ndarray, recency: np.ndarray, lost: np.ndarray, floor: float) -> RecencyMix:
        r = np.log1p(np.clip(recency, 0, None))
        mean = (float(np.mean(z)), float(np.mean(r)))
        scale = (float(np.std(z)) or 1.0, float(np.std(r)) or 1.0)
        fitted_w = 0.0
        if len(lost) and lost.min() != lost.max():
            x = np.column_stack([(z - mean[0]) / scale[0], (r - mean[1]) / scale[1]])
            b_learned, b_recency = _logistic_coefficients(x, lost.astype(float))
            # (not finite: the two separate the outcomes perfectly; recency then adds nothing)
            if np.isfinite(b_learned) and np.isfinite(b_recency) and b_recency > 0:
                fitted_w = float(b_recency / (max(b_learned, 0.0) + b_recency))
        return RecencyMix(max(fitted_w, floor), fitted_w, floor, mean, scale)

    def __call__(self, z: np.ndarray, recency: np.ndarray) -> np.ndarray:
        if self.w == 0:
            return z  # the learned log-odds as they are (Platt maps them as before)
        r = np.log1p(np.clip(recency, 0, None))
        learned = (z - self.mean[0]) / self.scale[0]
        return (1 - self.w) * learned + self.w * (r - self.mean[1]) / self.scale[1]


def weight_text(w: float) -> str:
    """A weight in [0, 1] as text: two decimals, more where two would round it to 0 or 1
    when it is neither (0.003 -> "0.003": "0.00" read as the learned model alone)."""
    for digits in range(2, 16):
        text = f"{w:.{digits}f}"
        if (float(text) == 0) == (w == 0) and (float(text) == 1) == (w == 1):
            return text
    return repr(w)


def _logistic_coefficients(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unpenalised logistic regression of y on x (with an intercept): the slopes.
    scikit-learn's Newton-Cholesky solver suits two inputs on up to ~100,000 cases
    (0.05 s of CPU there; its default lbfgs 0.1-0.8 s)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        # separable outcomes: the slopes grow until max_iter; the ratio is still read
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = LogisticRegression(C=np.inf, solver="newton-cholesky", max_iter=100, tol=1e-8)
        fit.fit(x, y)
    return fit.coef_[0]
