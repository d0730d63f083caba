"""The revenue band gate: pure computation, then as a mart check on a small DuckDB."""

from __future__ import annotations

import statistics
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.gate.revenue_band import comparable_days, compute_band, daily_revenue_sql
from pipelines.quality.checks import CheckContext
from pipelines.quality.mart_checks import MART_CHECKS, REVENUE_BAND_CHECK
from pipelines.quality.runner import run_checks

AS_OF = date(2026, 9, 30)  # a Wednesday


def _daily(values_by_day: dict[date, float], orders: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": list(values_by_day),
            "orders": [orders] * len(values_by_day),
            "net_revenue": list(values_by_day.values()),
        }
    )


def _weeks_back(values: list[float], as_of: date = AS_OF) -> dict[date, float]:
    """values[0] is one week before as_of, values[1] two weeks, ..."""
    return {as_of - timedelta(weeks=i + 1): v for i, v in enumerate(values)}


HISTORY = [1000.0, 1100.0, 900.0, 1050.0, 950.0, 1200.0, 800.0, 1000.0]


def test_comparable_days_are_same_weekday_within_window() -> None:
    days = comparable_days(AS_OF, 56)
    assert len(days) == 8
    assert all(d.weekday() == AS_OF.weekday() for d in days)
    assert min(days) == AS_OF - timedelta(days=56) and max(days) == AS_OF - timedelta(days=7)
    assert len(comparable_days(AS_OF, 20)) == 2


def test_band_is_median_plus_minus_k_mad() -> None:
    daily = _daily({**_weeks_back(HISTORY), AS_OF: 1020.0})
    band = compute_band(daily, AS_OF, days=56, k=4.0)
    median = statistics.median(HISTORY)
    mad = statistics.median(abs(v - median) for v in HISTORY)
    assert band.skipped is None
    assert band.history_days == 8
    assert band.median == pytest.approx(median)
    assert band.mad == pytest.approx(mad)
    assert band.low == pytest.approx(median - 4 * mad)
    assert band.high == pytest.approx(median + 4 * mad)
    assert band.value == pytest.approx(1020.0)
    assert band.within


@pytest.mark.parametrize("value", [50_000.0, 0.0, -500.0])
def test_spikes_and_collapses_are_out_of_band(value: float) -> None:
    band = compute_band(_daily({**_weeks_back(HISTORY), AS_OF: value}), AS_OF)
    assert band.skipped is None
    assert not band.within


def test_day_without_orders_counts_as_zero_revenue() -> None:
    band = compute_band(_daily(_weeks_back(HISTORY)), AS_OF)
    assert band.value == 0.0
    assert not band.within


def test_other_weekdays_and_days_outside_window_are_ignored() -> None:
    noise = {AS_OF - timedelta(days=d): 1e9 for d in (1, 2, 3, 8, 13)}
    old = {AS_OF - timedelta(weeks=9): 1e9, AS_OF - timedelta(weeks=20): -1e9}
    daily = _daily({**noise, **old, **_weeks_back(HISTORY), AS_OF: 1000.0})
    band = compute_band(daily, AS_OF, days=56)
    assert band.history_days == 8
    assert band.median == pytest.approx(statistics.median(HISTORY))
    assert band.within
    # a wider window reaches the 9th week back
    assert compute_band(daily, AS_OF, days=63).history_days == 9


def test_zero_mad_uses_a_floor_share_of_the_median() -> None:
    flat = _weeks_back([2000.0] * 6)
    band = compute_band(_daily({**flat, AS_OF: 2150.0}), AS_OF)
    assert band.mad == 0
    assert band.half_width == pytest.approx(200.0)
    assert band.within
    assert not compute_band(_daily({**flat, AS_OF: 2250.0}), AS_OF).within


def test_not_enough_history_is_skipped_as_a_pass() -> None:
    band = compute_band(_daily({**_weeks_back([1000.0, 1100.0, 900.0]), AS_OF: 1e9}), AS_OF)
    assert band.skipped is not None and "not enough history" in band.skipped
    assert band.history_days == 3
    assert band.within
    assert band.low is None and band.high is None


def test_days_without_orders_are_not_comparable() -> None:
    # four weeks of history, but two of those days had no order (rows with 0 orders)
    daily = _daily({**_weeks_back([1000.0, 1100.0]), AS_OF: 1e9})
    empty = pd.DataFrame(
        {
            "day": [AS_OF - timedelta(weeks=3), AS_OF - timedelta(weeks=4)],
            "orders": [0, 0],
            "net_revenue": [0.0, 0.0],
        }
    )
    band = compute_band(pd.concat([daily, empty]), AS_OF)
    assert band.history_days == 2
    assert band.skipped is not None


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 7 days"):
        compute_band(_daily({}), AS_OF, days=6)
    with pytest.raises(ValueError, match="positive"):
        compute_band(_daily({}), AS_OF, k=0)
    with pytest.raises(ValueError, match="lacks columns"):
        compute_band(pd.DataFrame({"day": []}), AS_OF)


# --------------------------------------------------------------------------- as a mart check


def _fct_orders_db(path: Path, revenue_by_day: dict[date, list[float]]) -> Path:
    rows = [
        (f"o{i}_{j}", day, "completed", amount)
        for i, (day, amounts) in enumerate(sorted(revenue_by_day.items()))
        for j, amount in enumerate(amounts)
    ]
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_orders (order_id varchar, order_date date, status varchar, "
        "net_revenue decimal(18,2))"
    )
    con.executemany("insert into marts.fct_orders values (?, ?, ?, ?)", rows)
    con.close()
    return path


def _band_check():
    return next(c for c in MART_CHECKS if c.name == REVENUE_BAND_CHECK)


def _history_orders() -> dict[date, list[float]]:
    # every day of ten weeks has two orders; the as-of weekday makes ~1000 a day
    out: dict[date, list[float]] = {}
    for back in range(1, 71):
        day = AS_OF - timedelta(days=back)
        base = HISTORY[(back // 7) % len(HISTORY)] if day.weekday() == AS_OF.weekday() else 7.0
        out[day] = [base / 2, base / 2]
    return out


def test_daily_revenue_sql_sums_per_day(tmp_path: Path) -> None:
    path = _fct_orders_db(tmp_path / "w.duckdb", {AS_OF: [10.0, 5.5], AS_OF - timedelta(1): [1.0]})
    con = duckdb.connect(str(path), read_only=True)
    df = con.execute(daily_revenue_sql(AS_OF, 56)).df()
    con.close()
    assert list(df["orders"]) == [1, 2]
    assert [float(v) for v in df["net_revenue"]] == [1.0, 15.5]


def test_band_check_passes_normal_day_and_fails_spike(tmp_path: Path) -> None:
    ctx = CheckContext(as_of=AS_OF, today=AS_OF, revenue_band_days=56, revenue_band_k=4.0)
    normal = _fct_orders_db(tmp_path / "ok.duckdb", {**_history_orders(), AS_OF: [500.0, 480.0]})
    [(check, outcome)] = run_checks(normal, [_band_check()], ctx)
    assert outcome.success, outcome.summary()
    assert outcome.skipped is None
    band = outcome.notes["revenue_band"]
    assert band["history_days"] == 8
    assert band["value"] == pytest.approx(980.0)
    assert band["median"] == pytest.approx(statistics.median(HISTORY))

    spike = _fct_orders_db(tmp_path / "bad.duckdb", {**_history_orders(), AS_OF: [50_000.0]})
    [(check, outcome)] = run_checks(spike, [_band_check()], ctx)
    assert not outcome.success
    assert outcome.error is None
    [failure] = outcome.failures
    assert failure["expectation"] == "expect_column_values_to_be_between"
    assert failure["column"] == "day_net_revenue"
    assert failure["sample"] == [50_000.0]
    assert failure["sample_rows"] == [{"day": AS_OF.isoformat(), "day_net_revenue": 50_000.0}]
    assert outcome.notes["revenue_band"]["within"] is False
    assert REVENUE_BAND_CHECK in outcome.summary()


def test_band_check_skips_without_history(tmp_path: Path) -> None:
    recent = {AS_OF - timedelta(days=d): [100.0] for d in range(1, 20)}
    path = _fct_orders_db(tmp_path / "new.duckdb", {**recent, AS_OF: [1e7]})
    ctx = CheckContext(as_of=AS_OF, today=AS_OF)
    [(_, outcome)] = run_checks(path, [_band_check()], ctx)
    assert outcome.success
    assert outcome.skipped is not None and "not enough history" in outcome.skipped
    assert outcome.notes["revenue_band"]["history_days"] == 2
    assert "skipped" in outcome.summary()


def test_band_check_window_and_k_come_from_the_context(tmp_path: Path) -> None:
    path = _fct_orders_db(tmp_path / "k.duckdb", {**_history_orders(), AS_OF: [700.0]})
    # 700 is 300 below the median 1000 (MAD 75): outside k=2 (±150), inside k=4 (±300)
    tight = CheckContext(as_of=AS_OF, today=AS_OF, revenue_band_k=2.0)
    loose = CheckContext(as_of=AS_OF, today=AS_OF, revenue_band_k=4.0)
    assert not run_checks(path, [_band_check()], tight)[0][1].success
    assert run_checks(path, [_band_check()], loose)[0][1].success
    short = CheckContext(as_of=AS_OF, today=AS_OF, revenue_band_days=21)
    assert run_checks(path, [_band_check()], short)[0][1].skipped is not None
