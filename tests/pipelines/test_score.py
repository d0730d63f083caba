"""pipelines.score on small hand-made histories (no dbt, no Dagster).

The features frame is built here from order days the way int_clients__score_features does
(one row per weekly as-of date and client with an order up to it; the next order day for
the outcome), so each test states the behaviour it plants and the answer it expects.
"""

from __future__ import annotations

import functools
import random
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.score import ScoreError, ScoreSettings, derive_horizon, score_clients
from pipelines.score.candidates import (
    _Boosting,
    _Logistic,
    _LogisticRFM,
    client_halves,
    client_weights,
)
from pipelines.score.features import LATENESS_FEATURES, feature_matrix
from pipelines.score.measures import (
    Platt,
    _linear_quantiles,
    calibration_error,
    closest_level,
    lowest_band,
    lowest_level,
    roc_auc,
    weight_text,
    wilson_lower,
)

D = date(2026, 9, 30)


def frame_from_orders(
    orders: dict[str, list[date]], as_of: date, weeks: int = 104, segment: str = "retail"
) -> pd.DataFrame:
    """Rows for D and every 7 days back (``weeks``), from order days up to ``as_of`` only
    (an order after D is never read, as in the dbt model)."""
    rows = []
    for k in range(weeks + 1):
        t = as_of - timedelta(days=7 * k)
        for client, days in orders.items():
            seen = sorted(d for d in days if d <= t)
            if not seen:
                continue
            later = [d for d in sorted(days) if t < d <= as_of]
            gaps = [(b - a).days for a, b in zip(seen, seen[1:], strict=False)]
            n = len(seen)
            expected = float(np.median(gaps)) if n >= 4 else 30.0
            recency = (t - seen[-1]).days
            rows.append(
                {
                    "as_of_date": t,
                    "client_id": client,
                    "segment": segment,
                    "days_since_last_order": recency,
                    "distinct_order_days": n,
                    "tenure_days": (t - seen[0]).days,
                    "mean_gap_days": (seen[-1] - seen[0]).days / (n - 1) if n > 1 else None,
                    "last_gap_days": gaps[-1] if gaps else None,
                    "longest_gap_days": max(gaps) if gaps else None,
                    "expected_interval_days": expected,
                    "overdue_ratio": recency / expected,
                    "revenue_90d": 100.0 * sum(1 for d in seen if (t - d).days < 90),
                    "revenue_prior_90d": 100.0 * sum(1 for d in seen if 90 <= (t - d).days < 180),
                    "revenue_365d": 100.0 * sum(1 for d in seen if (t - d).days < 365),
                    "order_days_90d": sum(1 for d in seen if (t - d).days < 90),
                    "order_days_180d": sum(1 for d in seen if (t - d).days < 180),
                    "revenue_to_date": 100.0 * n,
                    "first_order_revenue": 100.0,
                    "next_order_date": later[0] if later and t < as_of else None,
                }
            )
    return pd.DataFrame(rows)


def company(seed: int = 1, clients: int = 160, as_of: date = D) -> dict[str, list[date]]:
    """Clients buying every 7-60 days (jitter +-20 %) from a start date, each stopping
    for good at a random date (or never): who stops is what the score must rank."""
    rng = random.Random(seed)
    start = as_of - timedelta(days=730)
    out: dict[str, list[date]] = {}
    for i in range(clients):
        interval = rng.choice([7, 14, 30, 60])
        first = start + timedelta(days=rng.randrange(0, 500))
        stop = first + timedelta(days=rng.randrange(30, 900))
        days, d = [], first
        while d <= min(stop, as_of):
            days.append(d)
            d += timedelta(days=max(1, round(interval * rng.uniform(0.8, 1.2))))
        out[f"c{i:03d}"] = days
    return out


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return frame_from_orders(company(), D)


def test_scores_every_client_and_reports_every_candidate(history: pd.DataFrame) -> None:
    result = score_clients(history, D, ScoreSettings(horizon_days=60))
    today = history[history["as_of_date"] == D]
    assert sorted(result.clients["client_id"]) == sorted(today["client_id"])
    p = result.clients["churn_probability"].to_numpy(dtype=float)
    assert np.all((p > 0) & (p < 1))
    report = result.report
    assert set(report["candidate"]) == {
        "recency",
        "cadence_rule",
        "logistic",
        "logistic_rfm",
        "gradient_boosting",
        "blend",
    }
    # one row per candidate and validation window: 3 windows of different dates
    assert len(report) == 18 and report["validation_window"].nunique() == 3
    assert not report.duplicated(["candidate", "validation_window"]).any()
    assert set(report.loc[report["is_chosen"], "candidate"]) == {result.chosen}
    assert report["is_chosen"].sum() == 3
    assert (report["horizon_days"] == 60).all()
    # the choice rests on the mean AUC over the windows (or a learned one fell short of
    # the margin)
    means = report.groupby("candidate")["auc"].mean()
    assert means.to_dict() == pytest.approx(
        report.groupby("candidate")["mean_auc"].first().to_dict()
    )
    assert means[result.chosen] >= means.max() - ScoreSettings().margin - 1e-12
    chosen = report[report["is_chosen"]].iloc[0]
    assert "mean AUC over 3 validation windows" in chosen["why"]
    assert 0 < chosen["base_rate"] < 1 and chosen["cases"] > 100
    # only the newest window's chosen row carries the calibration error
    assert report["calibration_error"].notna().sum() == 1


def test_probability_never_falls_as_a_client_gets_later(history: pd.DataFrame) -> None:
    """Everything else equal, a later client never gets a lower probability: the boosted
    model is constrained on every lateness feature, the logistic one only sees recency."""
    passed = history[history["as_of_date"] <= D - timedelta(days=60)]
    y = passed["next_order_date"].map(lambda n: n is None or pd.isna(n)).to_numpy()
    ends = passed["as_of_date"].map(lambda t: t + timedelta(days=60))
    y = y | np.array(
        [
            bool(n is not None and not pd.isna(n) and n > e)
            for n, e in zip(passed["next_order_date"], ends, strict=True)
        ]
    )
    for cand in (_Boosting(["retail"], 3), _Logistic(["retail"], 3), _LogisticRFM(["retail"], 3)):
        cand.fit(passed, y, np.ones(len(y)))
        assert cand.monotone
        base = history[history["as_of_date"] == D].head(25)
        previous = None
        for recency in range(0, 400, 10):
            later = base.copy()
            later["days_since_last_order"] = recency
            later["overdue_ratio"] = recency / later["expected_interval_days"]
            p = cand.raw(later)
            if previous is not None:
                assert np.all(p >= previous - 1e-12), cand.name
            previous = p
    _, names = feature_matrix(history.head(3), ["retail"])
    assert set(LATENESS_FEATURES) <= set(names)


def test_boosting_never_lowers_the_probability_as_a_client_ages() -> None:
    """As a client stays silent, tenure grows with recency (for a one-order client it is
    recency). Planted: clients past 300 days of tenure stay, younger ones mostly leave, so
    tenure splits the trees; a one-order client aging from 250 to 350 days crossed that
    split and its boosted probability fell when only lateness was constrained."""
    rng = np.random.default_rng(7)
    n = 3000
    recency = rng.integers(0, 400, n).astype(float)
    span = np.where(rng.random(n) < 0.4, 0.0, rng.integers(30, 900, n).astype(float))
    tenure = recency + span
    lost = (tenure < 300) | (rng.random(n) < 0.1)
    one = span == 0
    frame = pd.DataFrame(
        {
            "as_of_date": D,
            "client_id": [f"c{i}" for i in range(n)],
            "segment": "retail",
            "days_since_last_order": recency,
            "distinct_order_days": np.where(one, 1, 5),
            "tenure_days": tenure,
            "mean_gap_days": np.where(one, np.nan, span / 4),
            "last_gap_days": np.where(one, np.nan, span / 4),
            "longest_gap_days": np.where(one, np.nan, span / 4),
            "expected_interval_days": np.where(one, 30.0, np.maximum(span / 4, 1)),
            "revenue_90d": 0.0,
            "revenue_prior_90d": 0.0,
            "revenue_365d": 100.0,
            "order_days_90d": 0,
            "order_days_180d": 0,
            "revenue_to_date": 100.0,
            "first_order_revenue": 100.0,
            "next_order_date": None,
        }
    )
    frame["overdue_ratio"] = frame["days_since_last_order"] / frame["expected_interval_days"]
    model = _Boosting(["retail"], 3).fit(frame, lost, np.ones(n))
    today = frame[one].head(40)
    previous = None
    for k in range(0, 181, 5):
        aged = today.copy()
        aged["days_since_last_order"] += k
        aged["tenure_days"] += k
        aged["overdue_ratio"] = aged["days_since_last_order"] / aged["expected_interval_days"]
        p = model.raw(aged)
        if previous is not None:
            assert np.all(p >= previous - 1e-12), k
        previous = p


def test_each_client_counts_once_in_the_logistic_fit() -> None:
    """A client's weekly cases share one case's weight: together they weigh the mean of
    their own weights (recent cases still count more within a client); the weights sum to
    the number of clients, not of cases."""
    ids = pd.Series(["a", "a", "a", "a", "b", "c", "c"])
    w = np.array([1.0, 1.0, 0.5, 0.5, 1.0, 0.2, 0.6])
    cw = client_weights(ids, w)
    assert np.allclose(cw, [0.25, 0.25, 0.125, 0.125, 1.0, 0.1, 0.3])
    assert np.isclose(cw.sum(), 3 - 0.25 - 0.6)


def test_the_rfm_logistic_reads_recency_frequency_and_money_only(history: pd.DataFrame) -> None:
    """logistic_rfm is fitted on log recency, log order days, log revenue to date (and the
    segment) alone: moving any other input leaves its score as it was, moving revenue to
    date or the order days moves it; the full logistic model reads the others too."""
    passed = history[history["as_of_date"] <= D - timedelta(days=60)].reset_index(drop=True)
    ends = passed["as_of_date"].map(lambda t: t + timedelta(days=60))
    lost = np.array(
        [
            n is None or pd.isna(n) or n > e
            for n, e in zip(passed["next_order_date"], ends, strict=True)
        ]
    )
    rfm = _LogisticRFM(["retail"], 3).fit(passed, lost, np.ones(len(lost)))
    full = _Logistic(["retail"], 3).fit(passed, lost, np.ones(len(lost)))
    _, names = feature_matrix(passed.head(1), ["retail"])
    assert [names[i] for i in rfm.keep] == [
        "log_recency",
        "log_order_days",
        "log_revenue_to_date",
        "segment=retail",
    ]
    assert rfm.monotone
    today = history[history["as_of_date"] == D].head(30).reset_index(drop=True)
    moved = today.copy()
    moved["tenure_days"] = moved["tenure_days"] * 3
    moved["mean_gap_days"] = moved["mean_gap_days"] * 2 + 5
    moved["order_days_90d"] = 0
    moved["order_days_180d"] = 0
    moved["revenue_90d"] = 0.0
    moved["revenue_prior_90d"] = 5000.0
    moved["revenue_365d"] = 1.0
    moved["first_order_revenue"] = 9999.0
    assert np.allclose(rfm.raw(moved), rfm.raw(today))
    assert not np.allclose(full.raw(moved), full.raw(today))
    richer = today.assign(revenue_to_date=today["revenue_to_date"] * 10)
    assert not np.allclose(rfm.raw(richer), rfm.raw(today))
    busier = today.assign(distinct_order_days=today["distinct_order_days"] + 5)
    assert not np.allclose(rfm.raw(busier), rfm.raw(today))


def test_the_windows_can_choose_the_rfm_logistic() -> None:
    """The RFM logistic is one more learned candidate: best on the windows' mean AUC and
    beyond recency's by the margin, it is chosen; the blend (of the full logistic and
    boosting) is still preferred within the margin of the best."""
    from pipelines.score.model import _choose

    means = {
        "recency": 0.61,
        "cadence_rule": 0.60,
        "logistic": 0.700,
        "logistic_rfm": 0.720,
        "gradient_boosting": 0.68,
        "blend": 0.705,
    }
    chosen, why = _choose(means, ScoreSettings(), "mean AUC over 3 validation windows")
    assert chosen == "logistic_rfm"
    assert "mean AUC over 3 validation windows 0.720" in why and "+0.110" in why
    chosen, _ = _choose({**means, "blend": 0.712}, ScoreSettings(), "mean AUC")
    assert chosen == "blend"
    # dropped in a window (its fit lowered the probability as lateness grows): out
    chosen, _ = _choose({**means, "logistic_rfm": None}, ScoreSettings(), "mean AUC")
    assert chosen == "blend"


def test_a_refit_that_lowers_the_probability_as_lateness_grows_is_passed_over() -> None:
    """Later clients are a little more often lost on the older dates and, on the newest
    passed dates (the newest validation window: in no window's fit, only in the refit on
    every passed date), strongly less often; more order days mean less often lost
    throughout. Every window's fits are monotone in lateness and a logistic model is chosen,
    but its refit (and every refit with log recency, the blend's too) turns recency's
    coefficient negative: the same rule publishes the next candidate whose refit is
    monotone (the boosted one is constrained in lateness), and ``why`` says which were
    passed over and why."""
    from pipelines.score.candidates import _fit
    from pipelines.score.model import _choose
    from pipelines.score.settings import LEARNED

    horizon = 28
    rng = np.random.default_rng(5)
    rows = []
    for k in range(31):  # D and 30 weeks back; 27 passed dates, windows of 27 // 5 = 5
        t = D - timedelta(days=7 * k)
        newest = 4 <= k <= 8  # the newest window's dates
        for i in range(150):
            r, n = int(rng.integers(1, 200)), int(rng.integers(1, 30))
            z = (-8.0 if newest else 0.3) * (np.log1p(r) - 4.3) - 1.5 * (np.log(n) - 2.4)
            lost = rng.random() < 1 / (1 + np.exp(-z))
            tenure = r + int(rng.integers(0, 400))
            rows.append(
                {
                    "as_of_date": t,
                    "client_id": f"c{k:02d}-{i:03d}",
                    "segment": "retail",
                    "days_since_last_order": r,
                    "distinct_order_days": n,
                    "tenure_days": tenure,
                    "mean_gap_days": (tenure - r) / (n - 1) if n > 1 else None,
                    "last_gap_days": 30.0 if n > 1 else None,
                    "longest_gap_days": 40.0 if n > 1 else None,
                    "expected_interval_days": 30.0,
                    "overdue_ratio": r / 30.0,
                    "revenue_90d": 100.0,
                    "revenue_prior_90d": 100.0,
                    "revenue_365d": 100.0 * min(n, 12),
                    "order_days_90d": 1,
                    "order_days_180d": 2,
                    "revenue_to_date": 100.0 * n,
                    "first_order_revenue": 100.0,
                    "next_order_date": None
                    if lost or k == 0
                    else t + timedelta(days=int(rng.integers(1, horizon))),
                }
            )
    frame = pd.DataFrame(rows)
    result = score_clients(frame, D, ScoreSettings(horizon_days=horizon))
    report = result.report
    assert not any("its fit for" in note for note in result.notes)  # the windows' fits pass
    means = report.groupby("candidate")["mean_auc"].first().to_dict()
    first, _ = _choose(means, ScoreSettings(), "mean AUC")
    assert first in LEARNED
    past = frame[frame["as_of_date"] <= D - timedelta(days=horizon)]
    lost = past["next_order_date"].isna().to_numpy()
    passed_over = [
        n for n in LEARNED if not _fit(n, ["retail"], ScoreSettings(), past, lost).monotone
    ]
    assert first in passed_over and "gradient_boosting" not in passed_over
    assert result.chosen == "gradient_boosting"
    assert (
        _choose(
            {n: None if n in passed_over else a for n, a in means.items()}, ScoreSettings(), "AUC"
        )[0]
        == result.chosen
    )
    why = report.loc[report["is_chosen"], "why"].iloc[0]
    assert f"passed over {first}" in why
    assert "its refit on every passed date lowered the probability as lateness grows" in why
    assert all(n in why for n in passed_over)
    assert report.loc[report["candidate"] == first, "why"].str.startswith("passed over").all()


def test_one_clients_many_dates_do_not_outweigh_the_other_clients() -> None:
    """52 planted cases, silent 300-657 days since a single order and all kept (they
    ordered again within the horizon): as one client's weekly dates they weigh one client
    and the logistic model still ranks later as more likely lost; the same cases as 52
    clients outweigh the 40 real clients' and turn the recency coefficient negative (the
    model is dropped)."""
    history = frame_from_orders(company(clients=40), D)
    passed = history[history["as_of_date"] <= D - timedelta(days=60)].reset_index(drop=True)
    ends = passed["as_of_date"].map(lambda t: t + timedelta(days=60))
    lost = np.array(
        [
            n is None or pd.isna(n) or n > e
            for n, e in zip(passed["next_order_date"], ends, strict=True)
        ]
    )
    template = passed[passed["distinct_order_days"] == 1].iloc[0]
    planted = pd.DataFrame([template] * 52).reset_index(drop=True)
    k = np.arange(52)
    planted["as_of_date"] = [D - timedelta(days=60 + 7 * int(i)) for i in k]
    planted["days_since_last_order"] = 300 + 7 * (51 - k)
    planted["tenure_days"] = planted["days_since_last_order"]
    planted["overdue_ratio"] = planted["days_since_last_order"] / planted["expected_interval_days"]
    for column in ("revenue_90d", "revenue_prior_90d", "order_days_90d", "order_days_180d"):
        planted[column] = 0
    y = np.concatenate([lost, np.zeros(52, dtype=bool)])
    fits = {}
    for how, ids in (("one client", ["loud"] * 52), ("52 clients", [f"loud{i}" for i in k])):
        frame = pd.concat([passed, planted.assign(client_id=ids)], ignore_index=True)
        fits[how] = _Logistic(["retail"], 3).fit(frame, y, np.ones(len(y))).monotone
    assert fits == {"one client": True, "52 clients": False}


def test_an_order_after_d_does_not_move_the_score(history: pd.DataFrame) -> None:
    orders = company()
    planted = {k: list(v) for k, v in orders.items()}
    quiet = min(planted, key=lambda c: planted[c][-1])  # the longest-silent client
    planted[quiet].append(D + timedelta(days=3))
    a = score_clients(frame_from_orders(orders, D), D, ScoreSettings(horizon_days=60))
    b = score_clients(frame_from_orders(planted, D), D, ScoreSettings(horizon_days=60))
    pd.testing.assert_frame_equal(a.clients, b.clients)
    pd.testing.assert_frame_equal(a.report, b.report)


def test_rows_after_d_are_refused(history: pd.DataFrame) -> None:
    late = history.head(1).copy()
    late["as_of_date"] = D + timedelta(days=1)
    with pytest.raises(ScoreError, match="after D"):
        score_clients(pd.concat([history, late]), D, ScoreSettings())
    with pytest.raises(ScoreError, match="lacks the columns"):
        score_clients(history.drop(columns=["tenure_days"]), D, ScoreSettings())
    with pytest.raises(ScoreError, match="churned_target_precision"):
        score_clients(history, D, ScoreSettings(churned_precision=1.5))


def test_too_few_cases_fall_back_to_recency_and_say_why() -> None:
    young = {f"c{i}": [D - timedelta(days=10 + i), D - timedelta(days=2 + i)] for i in range(8)}
    frame = frame_from_orders(young, D, weeks=4)
    result = score_clients(frame, D, ScoreSettings(horizon_days=30))
    assert result.chosen == "recency"
    assert len(result.report) == 1
    row = result.report.iloc[0]
    assert row["is_chosen"] and row["candidate"] == "recency"
    assert "fallback" in row["why"] and "30-day horizon" in row["why"]
    # no past case to calibrate on: no probability, the cadence rule sets the flags
    assert (result.clients["flags_from"] == "cadence_rule").all()
    assert result.clients["churn_probability"].isna().all()


def test_a_learned_model_needs_the_margin_to_be_chosen(history: pd.DataFrame) -> None:
    generous = score_clients(history, D, ScoreSettings(horizon_days=60, margin=0.0))
    aucs = generous.report.groupby("candidate")["auc"].mean().to_dict()
    best = max(aucs, key=aucs.get)
    assert generous.chosen == best
    strict = score_clients(history, D, ScoreSettings(horizon_days=60, margin=0.45))
    assert strict.chosen in ("recency", "cadence_rule")
    why = strict.report.loc[strict.report["is_chosen"], "why"].iloc[0]
    if best in ("logistic", "logistic_rfm", "gradient_boosting", "blend"):
        assert "no learned model beats recency by the margin 0.450" in why


def test_platt_scaling_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=40_000)
    truth = 1 / (1 + np.exp(-(2.0 * z - 1.0)))
    lost = rng.random(40_000) < truth
    platt = Platt.fit(z, lost)
    assert platt.a == pytest.approx(2.0, abs=0.1) and platt.b == pytest.approx(-1.0, abs=0.1)
    assert calibration_error(platt(z), lost) < 0.02
    assert calibration_error(np.full(len(z), 0.9), lost) > 0.3


def test_the_quantile_maps_quantiles_are_numpys_bit_for_bit() -> None:
    """_linear_quantiles replaces np.quantile in the quantile map (one sort instead of a
    partition per quantile): the same numbers exactly, ties, one value and NaN included."""
    rng = np.random.default_rng(3)
    for n, m in [(1, 1), (1, 7), (2, 5), (7, 3), (500, 4_000), (3_000, 2_999), (40_000, 512)]:
        values = rng.normal(size=n) * rng.choice([1e-3, 1.0, 300.0])
        for data in (values, np.round(values, 1), np.full(n, 0.25)):
            q = np.linspace(0, 1, m)
            assert np.array_equal(_linear_quantiles(data, q), np.quantile(data, q))
    with_nan = np.array([0.1, np.nan, 0.3])
    q = np.linspace(0, 1, 4)
    assert np.array_equal(_linear_quantiles(with_nan, q), np.quantile(with_nan, q), equal_nan=True)


def test_flag_levels_by_validated_precision() -> None:
    # p: 0.9 0.8 0.7 0.6 0.5 0.4 ; lost: 1 1 0 1 0 0 -> precision from each level:
    # 1, 1, 2/3, 3/4, 3/5, 1/2; with six cases no level is beyond doubt at 0.5 or more
    # (the lower end of 2 of 2 lost is 0.42)
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    lost = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    everyone = np.ones(6, dtype=bool)
    found = lowest_level(p, lost, everyone, 0.4, 1)
    assert (found.level, found.precision, found.cases) == (0.8, 1.0, 2)
    assert found.lower == pytest.approx(wilson_lower(1.0, 2)) == pytest.approx(0.4250, abs=1e-4)
    assert lowest_level(p, lost, everyone, 0.5, 1) is None
    # only eligible cases count (the lateness floor): without 0.7 (kept), 3 of 4 from 0.5
    # (lower end 0.36; 3 of 5 from 0.4: 0.27)
    without = np.array([1, 1, 0, 1, 1, 1], bool)
    found = lowest_level(p, lost, without, 0.3, 1)
    assert (found.level, found.precision, found.cases) == (0.5, 0.75, 4)
    assert lowest_level(p, lost, without, 0.3, 5) is None  # 5+ cases: 3 of 5, lower 0.27
    # lost 0.9, 0.8, 0.6 vs kept 0.7, 0.5, 0.4: 3 + 3 + 2 of 9 pairs ranked right
    assert roc_auc(p, lost) == pytest.approx(8 / 9)


def test_a_flag_level_needs_its_precision_beyond_doubt_over_distinct_clients() -> None:
    """50 validation cases above p = 0.6, 45 lost (0.90): as 50 distinct clients the lower
    end of the precision's 95 % range is 0.81, a churned level at 0.8; the same 50 cases
    from 5 clients on 10 weekly dates each (one outcome per client, as in the windows) are
    5 clients' evidence, lower end 0.53: no level, whatever the point precision (0.9)."""
    p = np.concatenate([np.linspace(0.99, 0.6, 50), np.linspace(0.5, 0.01, 50)])
    lost = np.zeros(100, dtype=bool)
    lost[:50] = True
    lost[[3, 11, 25, 38, 47]] = False  # 45 of the top 50 lost
    everyone = np.ones(100, dtype=bool)
    found = lowest_level(p, lost, everyone, 0.8, 20, np.array([f"c{i}" for i in range(100)]))
    assert found is not None
    assert (found.level, found.cases, found.clients) == (pytest.approx(0.6), 50, 50)
    assert found.precision == pytest.approx(0.9)
    assert found.lower == pytest.approx(0.8085, abs=1e-4)
    # the same 50 cases from 5 clients, each on 10 dates: the evidence of 5 clients
    repeated = np.array([f"c{i // 10}" for i in range(100)])
    assert lowest_level(p, lost, everyone, 0.8, 20, repeated) is None
    # what the note quotes: the closest level, 43 of the top 47 cases (5 clients) lost
    best = closest_level(p, lost, everyone, 20, repeated)
    assert (best.level, best.cases, best.clients) == (p[46], 47, 5)
    assert best.precision == pytest.approx(43 / 47)
    assert best.lower == pytest.approx(wilson_lower(43 / 47, 5)) == pytest.approx(0.549, abs=1e-3)
    # 20 cases at 0.85 point precision (17 of 20 clients): not beyond doubt (lower end 0.68)
    p20 = np.linspace(0.99, 0.8, 20)
    lost20 = np.ones(20, dtype=bool)
    lost20[[4, 9, 14]] = False
    assert lowest_level(p20, lost20, np.ones(20, dtype=bool), 0.8, 20) is None


def test_an_at_risk_band_needs_its_magnitude_and_to_be_beyond_doubt() -> None:
    """The at-risk band's two conditions, separately: its validated (point) precision
    reaches the halfway target (here 0.65: not-churned lost share 0.50, churned target
    0.80), and the lower end of its 95 % range, each client counted once, is above the
    not-churned share (0.50). 30 cases above p = 0.5, 20 lost (0.67), then 10 kept ones."""
    p = np.concatenate([np.linspace(0.95, 0.5, 30), np.linspace(0.45, 0.1, 10)])
    lost = np.zeros(40, dtype=bool)
    lost[:30] = True
    lost[[2, 5, 8, 11, 14, 17, 20, 23, 26, 29]] = False  # 20 of the top 30 lost
    everyone = np.ones(40, dtype=bool)
    distinct = np.array([f"c{i}" for i in range(40)])
    # 30 distinct clients: 0.67 >= 0.65 and lower end 0.52 > 0.50: a band from p = 0.5
    # (with the next case, 20 of 31: 0.65 < 0.65)
    found = lowest_band(p, lost, everyone, 0.65, 0.5, 20, distinct)
    assert found is not None
    assert (found.level, found.cases, found.clients) == (pytest.approx(0.5), 30, 30)
    assert found.precision == pytest.approx(20 / 30)
    assert found.lower == pytest.approx(wilson_lower(20 / 30, 30)) == pytest.approx(0.517, abs=1e-3)
    # churn-score-7's rule (the lower end itself reaching 0.65) had no band here
    assert lowest_level(p, lost, everyone, 0.65, 20, distinct) is None
    # magnitude without doubt removed: the same 30 cases from 6 clients on 5 dates each,
    # point precision 0.67 still passes 0.65, lower end 0.35 is not above 0.50: no band
    six = np.array([f"c{i // 5}" for i in range(40)])
    assert wilson_lower(20 / 30, 6) == pytest.approx(0.347, abs=1e-3)
    assert lowest_band(p, lost, everyone, 0.65, 0.5, 20, six) is None
    # beyond doubt without the magnitude: 400 distinct clients lost 0.55 of the time, lower
    # end 0.51 > 0.40 but 0.55 < 0.60: no band; with a halfway target of 0.50, a band
    p400 = np.linspace(0.99, 0.3, 400)
    i = np.arange(400)
    lost400 = (11 * (i + 1)) // 20 > (11 * i) // 20  # evenly 11 of every 20: never above 0.55
    all400 = np.ones(400, dtype=bool)
    ids400 = np.array([f"c{i}" for i in range(400)])
    assert wilson_lower(0.55, 400) == pytest.approx(0.509, abs=1e-3)
    assert lowest_band(p400, lost400, all400, 0.6, 0.4, 20, ids400) is None
    found = lowest_band(p400, lost400, all400, 0.5, 0.4, 20, ids400)
    assert found is not None and (found.cases, found.precision) == (400, pytest.approx(0.55))
    # fewer than min_cases cases: no band, whatever the precision
    assert lowest_band(p[:10], np.ones(10, dtype=bool), everyone[:10], 0.6, 0.4, 20) is None


def test_steady_buyers_with_jitter_are_never_churned() -> None:
    """Weekly buyers 8-10 days after their last order (1.14-1.43x) are never churned,
    whatever their probability: the lateness floor (1.5x by default)."""
    rng = random.Random(5)
    orders = company(seed=7)
    for i in range(60):
        last = D - timedelta(days=rng.choice([8, 9, 10]))
        days, d = [], last
        while d > D - timedelta(days=700):
            days.append(d)
            d -= timedelta(days=rng.choice([6, 7, 7, 7, 8]))
        orders[f"w{i:02d}"] = sorted(days)
    frame = frame_from_orders(orders, D)
    result = score_clients(frame, D, ScoreSettings(horizon_days=60))
    weekly = result.clients[result.clients["client_id"].str.startswith("w")]
    ratios = frame[(frame["as_of_date"] == D) & frame["client_id"].str.startswith("w")]
    assert ratios["overdue_ratio"].between(1.0, 1.5, inclusive="neither").all()
    assert not weekly["score_is_churned"].any()
    # the flags never contradict the probability: churned only at or above the level
    c = result.clients
    if result.churned_level is not None:
        assert (
            c.loc[c["score_is_churned"].astype(bool), "churn_probability"] >= result.churned_level
        ).all()
    assert not (c["score_is_churned"].astype(bool) & c["score_is_at_risk"].astype(bool)).any()


def test_default_horizon_from_cadence_capped_by_history() -> None:
    frame = frame_from_orders(company(), D)
    h, why = derive_horizon(frame, D, ScoreSettings())
    assert h % 7 == 0 and 28 <= h <= 365 and "usual interval" in why
    short = frame[frame["as_of_date"] >= D - timedelta(days=70)]
    h_short, why_short = derive_horizon(short, D, ScoreSettings())
    assert h_short == 35 and "capped at half the 70 days" in why_short
    assert derive_horizon(frame, D, ScoreSettings(horizon_days=91)) == (
        91,
        "setting churn_horizon_days",
    )


def test_too_few_cases_give_a_probability_but_the_cadence_rule_sets_the_flags() -> None:
    # 7 monthly clients, 2 of them silent since March: past cases of both outcomes, far
    # fewer than the 30 lost / 30 kept an out-of-time judgement needs
    monthly = [D - timedelta(days=30 * k) for k in range(1, 16)]
    orders = {f"k{i}": monthly for i in range(5)}
    orders |= {f"g{i}": [d for d in monthly if d <= D - timedelta(days=200)] for i in range(2)}
    frame = frame_from_orders(orders, D, weeks=12)
    result = score_clients(frame, D, ScoreSettings(horizon_days=60))
    assert result.chosen == "recency"
    assert "fallback" in result.report.iloc[0]["why"]
    # a probability fitted on every past case, rising with silence ...
    p = result.clients.set_index("client_id")["churn_probability"]
    assert p.notna().all() and p["g0"] > p["k0"]
    # ... but no level judged in-sample on a handful of clients decides the flags
    assert (result.clients["flags_from"] == "cadence_rule").all()
    assert result.clients["churned_level"].isna().all()
    assert any("cadence rule" in n for n in result.notes)


def test_reasons_name_the_facts_that_raised_the_score(history: pd.DataFrame) -> None:
    """The planted clients who stopped for good are flagged for their silence: the facts
    behind a churned client's score name it ('silent N days'), at most three facts; a client
    who ordered in the last week has no fact raising its score above a typical kept client."""
    result = score_clients(history, D, ScoreSettings(horizon_days=60))
    clients = result.clients.merge(
        history[history["as_of_date"] == D][["client_id", "days_since_last_order"]],
        on="client_id",
    )
    churned = clients[clients["score_is_churned"].astype(bool)]
    assert len(churned) > 5
    for row in churned.itertuples():
        facts = row.score_drivers.split("; ")
        assert 1 <= len(facts) <= 3
        assert f"silent {row.days_since_last_order} days" in row.score_drivers
    fresh = clients[clients["days_since_last_order"] <= 3]
    assert len(fresh) > 5
    assert not any("silent" in str(d) for d in fresh["score_drivers"])


class _FewOrderDaysModel:
    """A hand-made learned model: log-odds 2 - 2 x log(order days); silence plays no part."""

    def __init__(self, column: int) -> None:
        self.column = column

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-(2 - 2 * x[:, self.column])))
        return np.column_stack([1 - p, p])


def test_reasons_name_the_silence_in_proportion_to_recencys_weight(
    history: pd.DataFrame,
) -> None:
    """A learned model that only knows order days: its reasons never name the silence.
    Published through a recency mix of weight 0 the reasons are the same text; with recency
    weighing 0.9 the silence of a long-silent client is named, first."""
    from pipelines.score.candidates import _Learned
    from pipelines.score.drivers import score_drivers
    from pipelines.score.measures import RecencyMix

    past = history[history["as_of_date"] < D]
    today = history[history["as_of_date"] == D].reset_index(drop=True)
    lost = (past["days_since_last_order"] > 60).to_numpy()
    _, names = feature_matrix(today, [])
    cand = _Learned([], 0)
    cand.model = _FewOrderDaysModel(names.index("log_order_days"))
    alone = score_drivers(cand, today, past, lost, [])
    assert not any("silent" in str(d) for d in alone)
    zero = RecencyMix(0.0, 0.0, 0.0, (0.0, 0.0), (1.0, 1.0))
    assert score_drivers(cand, today, past, lost, [], mix=zero, slope=1.7) == alone
    # the standardisation of a real mix: the learned log-odds and log recency on the past
    z = cand.link(cand.raw(past))
    r = np.log1p(past["days_since_last_order"].to_numpy(dtype=float))
    high = RecencyMix(0.9, 0.9, 0.0, (z.mean(), r.mean()), (z.std(), r.std()))
    mixed = score_drivers(cand, today, past, lost, [], mix=high, slope=1.0)
    typical = float(np.median(past.loc[~lost, "days_since_last_order"]))
    silent = today.index[today["days_since_last_order"] > 3 * typical]
    assert len(silent) > 3
    for i in silent:
        days = today.loc[i, "days_since_last_order"]
        assert str(mixed[i]).startswith(f"silent {days} days"), (alone[i], mixed[i])
    # a client ordering now is not called silent whatever recency's weight
    fresh = today.index[today["days_since_last_order"] <= typical]
    assert len(fresh) and not any("silent" in str(mixed[i]) for i in fresh)


def test_learned_models_are_judged_on_clients_they_were_not_fitted_on(
    history: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's judgement (and so the choice and the flag levels) uses the clients of the
    other half only: the same client's cases a week apart share their outcome, so a model
    judged on its own fit clients is rewarded for recognising them."""
    from pipelines.score import model

    fits: list[tuple[set[str], set[str]]] = []  # (clients fitted on, clients scored)
    real_fit = model._fit

    def recording_fit(name, segments, settings, cases, lost, weights=None):  # type: ignore[no-untyped-def]
        fitted = real_fit(name, segments, settings, cases, lost, weights)
        scored: set[str] = set()
        real_raw = fitted.raw

        def raw(frame: pd.DataFrame) -> np.ndarray:
            scored.update(frame["client_id"].astype(str))
            return real_raw(frame)

        fitted.raw = raw  # type: ignore[method-assign]
        fits.append((set(cases["client_id"].astype(str)), scored))
        return fitted

    monkeypatch.setattr(model, "_fit", recording_fit)
    result = score_clients(history, D, ScoreSettings(horizon_days=60))
    assert result.chosen in ("logistic", "logistic_rfm", "gradient_boosting", "blend")
    everyone = set(history["client_id"])
    # per window (3), the two logistic models and boosting, each once per half; then the
    # refits on every passed date
    window_fits, refits = fits[:18], fits[18:]
    for fitted_on, scored in window_fits:
        assert scored and not fitted_on & scored
    assert refits and all(len(f[0]) > len(w[0]) for f in refits for w in window_fits)
    halves = client_halves(pd.Series(sorted(everyone)))
    assert 0.3 < halves.mean() < 0.7
    assert "judged on the other half of the clients" in result.report["why"].iloc[0]


def _cases(dates: list[date], per_date: int, lost_share: float) -> tuple[pd.DataFrame, np.ndarray]:
    """``per_date`` cases on each date, the first ``lost_share`` of them lost."""
    rows = [
        {"as_of_date": t, "client_id": f"c{i:04d}", "distinct_order_days": 3}
        for t in dates
        for i in range(per_date)
    ]
    lost = np.array([i < lost_share * per_date for t in dates for i in range(per_date)])
    return pd.DataFrame(rows), lost


def test_windows_newest_first_each_fitted_on_the_dates_before_it() -> None:
    """30 weekly dates, 100 cases each: 3 windows of 30 // 5 = 6 dates, newest first, each
    fitted on the dates whose 14-day horizon ended before it."""
    from pipelines.score.model import _plan_windows

    dates = [D - timedelta(days=7 * k) for k in range(30, 0, -1)]
    past, lost = _cases(dates, 100, 0.4)
    halves = client_halves(past["client_id"])
    windows, note = _plan_windows(past, lost, halves, 14, ScoreSettings())
    assert note is None and len(windows) == 3
    firsts = []
    for i, win in enumerate(windows):
        judged = sorted(past.loc[win.val_mask, "as_of_date"].unique())
        assert judged == dates[30 - 6 * (i + 1) : 30 - 6 * i]
        fitted = past.loc[win.fit_mask, "as_of_date"]
        assert fitted.max() + timedelta(days=14) < judged[0]
        assert win.grouped and "horizon ended before the window" in win.fit_how
        firsts.append(judged[0])
    assert firsts == sorted(firsts, reverse=True)


def test_a_young_company_falls_back_to_one_window_and_says_why() -> None:
    """9 dates of 40 cases, 25 % lost (10 a date): one window of 3 dates holds 30 lost (just
    enough), three windows of 1 date hold 10 each (too few): the single window, and the
    note says which fallback and why."""
    from pipelines.score.model import _plan_windows

    dates = [D - timedelta(days=7 * k) for k in range(9, 0, -1)]
    past, lost = _cases(dates, 40, 0.25)
    windows, note = _plan_windows(past, lost, client_halves(past["client_id"]), 7, ScoreSettings())
    assert len(windows) == 1
    assert note is not None and note.startswith("fallback: 1 validation window instead of 3")
    assert "30 lost and 30 kept" in note
    # 20 dates of 20 cases, 6 lost a date: 3 windows of 4 dates hold 24 lost (too few), 2 of
    # 5 dates 30 (enough): two windows, and the note says so
    dates20 = [D - timedelta(days=7 * k) for k in range(20, 0, -1)]
    past20, lost20 = _cases(dates20, 20, 0.3)
    halves20 = client_halves(past20["client_id"])
    windows, note = _plan_windows(past20, lost20, halves20, 7, ScoreSettings())
    assert len(windows) == 2 and [int(w.val_mask.sum()) for w in windows] == [100, 100]
    assert note is not None and note.startswith("fallback: 2 validation windows instead of 3")
    # fewer still: no window at all (the recency fallback)
    windows, note = _plan_windows(
        past, lost, client_halves(past["client_id"]), 7, ScoreSettings(min_cases=200)
    )
    assert windows == [] and note is None


def test_the_choice_takes_the_mean_auc_over_windows_and_the_margin_on_it() -> None:
    """Boosting wins the newest window (0.80 vs 0.74) but is worse on the two older ones:
    its mean (0.70) is below the logistic model's (0.74); the margin is judged on the means."""
    from pipelines.score.model import _choose

    per_window = {
        "recency": [0.70, 0.71, 0.72],
        "cadence_rule": [0.68, 0.69, 0.70],
        "logistic": [0.74, 0.74, 0.74],
        "gradient_boosting": [0.80, 0.65, 0.65],
        "blend": [0.70, 0.70, 0.70],
    }
    means = {n: float(np.mean(v)) for n, v in per_window.items()}
    chosen, why = _choose(means, ScoreSettings(), "mean AUC over 3 validation windows")
    assert chosen == "logistic"
    assert "mean AUC over 3 validation windows 0.740" in why and "+0.030" in why
    # recency's mean 0.71: a margin of 0.05 is not met by the logistic model's +0.03
    chosen, why = _choose(means, ScoreSettings(margin=0.05), "mean AUC")
    assert chosen == "recency" and "no learned model beats recency by the margin 0.050" in why


def test_a_planted_drift_in_the_lost_share_weights_recent_cases() -> None:
    """20 weekly dates of 100 clients: lost 5 % on the older 10 dates, 30 % on the newer 10
    is a drift (recent cases weighted, half-life a third of the 133-day span); the same
    share throughout, or a change of 3 points, is not (equal weights)."""
    from pipelines.score.settings import _weights, detect_drift

    dates = [D - timedelta(days=7 * k) for k in range(20, 0, -1)]
    older, _ = _cases(dates[:10], 100, 0.05)
    newer, _ = _cases(dates[10:], 100, 0.30)
    past = pd.concat([older, newer], ignore_index=True)
    lost = np.concatenate([_cases(dates[:10], 100, 0.05)[1], _cases(dates[10:], 100, 0.30)[1]])
    drift = detect_drift(past, lost, ScoreSettings())
    assert drift.drifted and drift.older_share == pytest.approx(0.05)
    assert drift.newer_share == pytest.approx(0.30) and drift.z > 2
    assert drift.half_life_days == pytest.approx(133 / 3)
    assert "all past cases drifted (0.05 on the older half of the past dates, 0.30 on the" in (
        drift.describe()
    )
    w = _weights(past, lost, ScoreSettings())
    newest, oldest = past["as_of_date"] == dates[-1], past["as_of_date"] == dates[0]
    assert np.allclose(w[newest], 1.0) and np.allclose(w[oldest], 0.5**3)
    # a half-life of 0 switches the weighting off, even under drift
    assert np.allclose(_weights(past, lost, ScoreSettings(half_life_days=0)), 1)

    for share_new in (0.05, 0.08):  # no change; 3 points (below 5 points absolute)
        steady = np.concatenate(
            [_cases(dates[:10], 100, 0.05)[1], _cases(dates[10:], 100, share_new)[1]]
        )
        assert not detect_drift(past, steady, ScoreSettings()).drifted
        assert np.allclose(_weights(past, steady, ScoreSettings()), 1.0)
    # hidden among one-order clients (300 a date, 90 % lost throughout): the overall share
    # moves 0.69 -> 0.75 (under 25 %), the repeat buyers' 0.05 -> 0.30 is found
    singles, _ = _cases(dates, 300, 0.9)
    singles["distinct_order_days"] = 1
    singles["client_id"] = "s" + singles["client_id"]
    mixed = pd.concat([past, singles], ignore_index=True)
    mixed_lost = np.concatenate([lost, _cases(dates, 300, 0.9)[1]])
    hidden = detect_drift(mixed, mixed_lost, ScoreSettings())
    assert hidden.drifted and hidden.group == "repeat buyers' cases (2+ order days)"
    assert hidden.newer_share == pytest.approx(0.30)
    # 5 % -> 30 % on 4 clients a date is no evidence of drift (|z| < 2 counted on clients)
    few = _cases(dates, 4, 0.0)[0]
    few_lost = np.array([i == 0 and t >= dates[10] for t in dates for i in range(4)])
    assert not detect_drift(few, few_lost, ScoreSettings()).drifted


def test_under_drift_the_boosted_fit_follows_the_recent_lost_share() -> None:
    """The boosted model weights by a fixed-seed sample (kept with probability = weight): on
    a planted drift its mean probability on the newest date's cases is nearer the recent
    lost share than an equally weighted fit's."""
    rng = np.random.default_rng(3)
    dates = [D - timedelta(days=7 * k) for k in range(40, 0, -1)]
    rows, lost = [], []
    for j, t in enumerate(dates):
        share = 0.05 if j < 20 else 0.35
        for i in range(150):
            recency = int(rng.integers(1, 200))
            rows.append(
                {
                    "as_of_date": t,
                    "client_id": f"c{i:03d}",
                    "segment": "retail",
                    "days_since_last_order": recency,
                    "distinct_order_days": 5,
                    "tenure_days": 400,
                    "mean_gap_days": 30.0,
                    "last_gap_days": 30.0,
                    "longest_gap_days": 60.0,
                    "expected_interval_days": 30.0,
                    "overdue_ratio": recency / 30,
                    "revenue_90d": 100.0,
                    "revenue_prior_90d": 100.0,
                    "revenue_365d": 400.0,
                    "order_days_90d": 1,
                    "order_days_180d": 2,
                    "revenue_to_date": 500.0,
                    "first_order_revenue": 100.0,
                }
            )
            lost.append(rng.random() < share * (0.5 + recency / 200))
    frame, y = pd.DataFrame(rows), np.array(lost)
    from pipelines.score.candidates import _fit

    newest = (frame["as_of_date"] == dates[-1]).to_numpy()
    recent_share = float(y[frame["as_of_date"] >= dates[20]].mean())
    weighted = _fit("gradient_boosting", ["retail"], ScoreSettings(), frame, y)
    equal = _fit("gradient_boosting", ["retail"], ScoreSettings(half_life_days=0), frame, y)
    p_w = weighted.raw(frame[newest]).mean()
    p_e = equal.raw(frame[newest]).mean()
    assert abs(p_w - recent_share) < abs(p_e - recent_share) - 0.03


def b2b_resellers(seed: int, until: date, clients: int = 400) -> dict[str, list[date]]:
    """A B2B reseller export's shape (the issue's: the old score 0.542 vs recency 0.726 on
    one): 3 years of clients ordering every 45-150 days, irregularly (0.5-2x their
    interval, one gap in 8 a pause of 2.5-4x), mostly 4-9 order days in all; half of them
    try once and most of those (60 %) never come back, so many clients have one order.
    Stopping after a later order is rare (2 %) until 430 days before ``until`` - 182, then
    common (15 %): the resellers' lost share jumps within the past dates. Orders run to
    ``until``."""
    rng = random.Random(seed)
    start = until - timedelta(days=3 * 365 + 182)
    jump = until - timedelta(days=182 + 430)
    out: dict[str, list[date]] = {}
    for i in range(clients):
        first = start + timedelta(days=rng.randrange(0, 3 * 365))
        interval = rng.choice([45, 60, 90, 120, 150])
        trial = rng.random() < 0.5
        days, d = [], first
        while d <= until:
            days.append(d)
            if trial and len(days) == 1 and rng.random() < 0.6:
                break
            if rng.random() < (0.02 if d < jump else 0.15):
                break
            pause = rng.uniform(2.5, 4) if rng.random() < 0.125 else rng.uniform(0.5, 2)
            d += timedelta(days=max(7, round(interval * pause)))
        out[f"r{i:03d}"] = days
    return out


@pytest.fixture(scope="module")
def b2b() -> tuple[dict[str, list[date]], pd.DataFrame, object]:
    """The generated reseller export scored at D (182-day horizon), orders to D + 182."""
    orders = b2b_resellers(11, D + timedelta(days=182))
    frame = frame_from_orders(orders, D, weeks=156)
    result = score_clients(frame, D, ScoreSettings(horizon_days=182))
    return orders, frame, result


def test_b2b_resellers_flags_keep_their_floors_and_their_probability(b2b) -> None:  # type: ignore[no-untyped-def]
    """On the generated reseller export (its lost share found drifting), the flags
    keep their floors and never contradict the probability: churned only at 1.5x+ the usual
    interval and at or above the churned level, at risk only beyond the interval and at or
    above its level, never both; a churned client is never less likely lost than a client
    the score leaves unflagged at the same or a later lateness."""
    _, frame, result = b2b
    assert any("drifted" in n and "recent cases weighted more" in n for n in result.notes)
    today = frame[frame["as_of_date"] == D].merge(result.clients, on="client_id")
    churned = today["score_is_churned"].astype(bool)
    at_risk = today["score_is_at_risk"].astype(bool)
    assert churned.sum() > 10
    assert (today.loc[churned, "overdue_ratio"] >= 1.5).all()
    assert (today.loc[at_risk, "overdue_ratio"] > 1.0).all()
    assert (today.loc[churned, "churn_probability"] >= result.churned_level).all()
    if result.at_risk_level is not None:
        assert (today.loc[at_risk, "churn_probability"] >= result.at_risk_level).all()
    assert not (churned & at_risk).any()
    late = today[today["overdue_ratio"] >= 1.5]
    unflagged = late[~late["score_is_churned"].astype(bool)]
    assert (unflagged["churn_probability"] < result.churned_level).all()


MIX_COLUMNS = ["recency_weight", "fitted_recency_weight", "lost_share_drift"]


def test_the_report_carries_the_recency_mix_in_its_own_columns(b2b, history) -> None:  # type: ignore[no-untyped-def]
    """The mix behind churn_probability is published as columns, the same on every report
    row (as the levels are): on the reseller export (a learned model chosen, its lost share
    drifting across the validation dates) recency's weight is at least the drift floor,
    never below the fitted one, and the chosen rows' why says the same weights; a simple
    score chosen (the margin out of reach) or too few cases: no mix, the columns NULL."""
    _, _, result = b2b
    report = result.report
    assert result.chosen in ("logistic", "logistic_rfm", "gradient_boosting", "blend")
    assert len(report[MIX_COLUMNS].drop_duplicates()) == 1
    w, fitted, drift = report[MIX_COLUMNS].iloc[0]
    assert bool(drift) is True
    assert w == max(fitted, ScoreSettings().drift_recency_weight) and 0 <= fitted <= w <= 1
    why = report.loc[report["is_chosen"], "why"].iloc[0]
    assert (
        f"recency's weight {weight_text(w)} (fitted on the validation cases "
        f"{weight_text(fitted)}; the lost share of "
    ) in why
    simple = score_clients(history, D, ScoreSettings(horizon_days=60, margin=0.45)).report
    young = {f"c{i}": [D - timedelta(days=10 + i), D - timedelta(days=2 + i)] for i in range(8)}
    fallback = score_clients(
        frame_from_orders(young, D, weeks=4), D, ScoreSettings(horizon_days=30)
    ).report
    for no_mix in (simple, fallback):
        assert no_mix[MIX_COLUMNS].isna().all().all()


#: seeds of the generated reseller export: each a distinct run (the generator is
#: shift-invariant, so moving D by whole weeks with the same seed gives the same run);
#: seed 16 was a strict xfail (published 0.816 vs recency's 0.819) until churn-score-9
#: counted each client once in the logistic fit (0.823, the blend published)
B2B_SEEDS = range(11, 23)


@functools.cache
def b2b_scored(seed: int) -> tuple[pd.DataFrame, np.ndarray, object]:
    """The generated reseller export of ``seed`` scored at D (182-day horizon): D's clients
    with their scores, whether each really placed no order in the 182 days after D, and
    the result."""
    orders = b2b_resellers(seed, D + timedelta(days=182))
    frame = frame_from_orders(orders, D, weeks=156)
    result = score_clients(frame, D, ScoreSettings(horizon_days=182))
    today = frame[frame["as_of_date"] == D].merge(result.clients, on="client_id")
    lost = np.array(
        [not any(D < d <= D + timedelta(days=182) for d in orders[c]) for c in today["client_id"]]
    )
    return today, lost, result


@pytest.mark.parametrize("seed", B2B_SEEDS)
def test_b2b_resellers_the_published_score_never_ranks_below_recency(seed: int) -> None:
    """The published churn_probability ranks D's clients by "no order within 182 days" at
    least as well as plain recency, judged on what they really did after D, on 12 generated
    reseller exports (the learned model alone ranked below recency on 6 of them)."""
    today, lost, _ = b2b_scored(seed)
    assert 0.15 < lost.mean() < 0.85 and len(today) > 200
    auc_published = roc_auc(today["churn_probability"].to_numpy(dtype=float), lost)
    auc_recency = roc_auc(today["days_since_last_order"].to_numpy(dtype=float), lost)
    assert auc_published >= auc_recency


@pytest.mark.parametrize("seed", range(11, 23))
def test_b2b_resellers_flags_are_as_right_at_d_as_they_claim(seed: int) -> None:
    """Out of time: the churned flag's published precision (the lower end of its validated
    precision's 95 % range) is met by what D's flagged clients really did in the 182 days
    after D, on 12 generated reseller exports (claimed 0.80-0.81, realized 0.87-0.96 with
    the lower bound; the point precision claimed the same 0.80 with realized 0.83-0.95), and
    the at-risk band, where it holds 20+ clients at D, is lost more often than the
    not-churned clients are (a thinner band is no evidence either way: seed 18's 5 clients
    at D, 2 lost)."""
    today, lost, result = b2b_scored(seed)
    churned = today["score_is_churned"].astype(bool).to_numpy()
    at_risk = today["score_is_at_risk"].astype(bool).to_numpy()
    claimed = float(today["churned_precision"].iloc[0])
    assert churned.sum() >= 100
    assert claimed >= 0.8
    assert lost[churned].mean() >= claimed
    if at_risk.sum() >= 20:
        assert lost[at_risk].mean() > lost[~churned].mean()


def test_a_short_history_is_judged_on_fewer_windows_and_the_report_says_so() -> None:
    """60 clients, 12 weeks of dates, a 28-day horizon: too few cases for 3 windows, enough
    for 2; the report has each candidate's 2 window rows, and the chosen rows' why names
    the fallback."""
    frame = frame_from_orders(company(clients=60), D, weeks=12)
    result = score_clients(frame, D, ScoreSettings(horizon_days=28))
    report = result.report
    assert report["validation_window"].nunique() == 2 and len(report) == 12
    chosen_why = report.loc[report["is_chosen"], "why"]
    assert len(chosen_why) == 2
    assert all("fallback: 2 validation windows instead of 3" in w for w in chosen_why)
    assert any(n.startswith("fallback: 2 validation windows") for n in result.notes)


def test_a_weight_is_never_printed_as_0_or_1_when_it_is_neither() -> None:
    """Two decimals, more where two would round to 0 or 1 (0.003 read as 0.00 looked like
    the learned model alone)."""
    assert [weight_text(w) for w in (0.0, 0.5, 0.123, 1.0)] == ["0.00", "0.50", "0.12", "1.00"]
    assert [weight_text(w) for w in (0.003, 0.0049, 0.00004, 0.996, 0.9996)] == [
        "0.003",
        "0.005",
        "0.00004",
        "0.996",
        "0.9996",
    ]


def test_the_recency_mix_weighs_recency_by_what_it_adds_out_of_time() -> None:
    """Hand-made validation cases: where the outcome follows the learned score and recency
    is noise, recency's fitted weight is ~0 and a weight of 0 leaves the learned log-odds as
    they are; where the outcome follows recency and the learned score is noise, the weight
    is ~1; the floor (set under drift) lifts a lower fitted weight; the mix never falls as
    recency grows."""
    from pipelines.score.measures import RecencyMix

    rng = np.random.default_rng(7)
    z = rng.normal(size=4000)
    recency = rng.integers(0, 400, size=4000).astype(float)
    follows_z = rng.random(4000) < 1 / (1 + np.exp(-2 * z))
    mix = RecencyMix.fit(z, recency, follows_z, floor=0.0)
    assert mix.fitted_w < 0.05 and mix.w == mix.fitted_w
    zero = RecencyMix(0.0, 0.0, 0.0, (0.0, 0.0), (1.0, 1.0))
    assert np.array_equal(zero(z, recency), z)
    r = np.log1p(recency)
    follows_recency = rng.random(4000) < 1 / (1 + np.exp(-3 * (r - r.mean()) / r.std()))
    assert RecencyMix.fit(z, recency, follows_recency, floor=0.0).w > 0.9
    floored = RecencyMix.fit(z, recency, follows_z, floor=0.5)
    assert floored.w == 0.5 and floored.fitted_w < 0.05
    later = floored(np.zeros(40), np.arange(0, 400, 10, dtype=float))
    assert np.all(np.diff(later) > 0)


def test_recency_gets_at_least_the_floor_only_where_the_validation_dates_drift() -> None:
    """20 weekly validation dates of 100 repeat buyers whose outcome follows the learned
    score: with the lost share steady (20 %) recency's weight is the fitted one (~0); with it
    moving from 5 % to 30 % across the dates, at least ``drift_recency_weight`` (0.5), and
    the note says why."""
    from pipelines.score.model import _recency_mix

    rng = np.random.default_rng(11)
    dates = [D - timedelta(days=7 * k) for k in range(20, 0, -1)]
    cases, _ = _cases(dates, 100, 0.0)
    cases["days_since_last_order"] = rng.integers(0, 300, size=len(cases))
    z = rng.normal(size=len(cases))
    newer = (cases["as_of_date"] >= dates[10]).to_numpy()
    order = np.argsort(np.argsort(-z))  # rank of z within all cases
    steady = order < 0.2 * len(z)
    mix, drifted, note = _recency_mix(z, cases, steady, ScoreSettings())
    assert mix.w == mix.fitted_w < 0.05 and not drifted
    assert "no drift across the validation dates" in note
    drifting = np.where(newer, z > np.quantile(z, 0.70), z > np.quantile(z, 0.95))
    mix, drifted, note = _recency_mix(z, cases, drifting, ScoreSettings())
    assert mix.w == 0.5 and mix.fitted_w < 0.05 and drifted
    assert "drifted across the validation dates" in note and "at least 0.50" in note
    # the note gives the fitted weight with the digits that tell it from 0
    assert f"(fitted on the validation cases {weight_text(mix.fitted_w)};" in note
    mix, drifted, _ = _recency_mix(z, cases, drifting, ScoreSettings(drift_recency_weight=0.0))
    assert mix.w == mix.fitted_w and drifted
    with pytest.raises(ScoreError, match="drift_recency_weight"):
        ScoreSettings(drift_recency_weight=1.5).validate()
