"""The status history over many as-of dates (issue 10) on real dbt builds.

* Equality: a first run at D reconstructs the missing dates of the window; the same dates built
  one at a time by the daily models (a fresh work DB each, as_of_date = that date) give the same
  cadence-rule flags, expected interval, overdue ratio and ABC class, and the same
  lifecycle_stage and status_group wherever the daily churn score flags as the cadence rule does
  (reconstructed rows keep the cadence rule; the score is fitted for D only).
* Planted: a weekly buyer that stops is in decline from the at-risk day and in churn from
  last order + ceil(churn_ratio x 7); client_stage_transitions and client_lifecycle say so on
  a first run.
* Incremental: the next daily run adds exactly its date, a skipped day is reconstructed, a
  backfill (rebuild_from) rebuilds its range and nothing else.

The builds run what ships: the cadence rule's factors are the segment policy's or the
defaults (nothing is learned from past cases any more), so a history build and a daily build
at an earlier date judge with the same factors.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from dbt_support import HISTORY_DAYS, WORK_DB, load_generated, query, run_dbt
from planted_clients import populate_planted_clients

D = date(2026, 9, 30)
#: the daily models of one as-of date (no history model)
DAILY_SELECT = ["+int_clients__lifecycle_today", "+client_churn_signals", "+client_abc"]
#: the columns that must agree between a daily build's cadence rule and a reconstructed row
CADENCE_COMPARED = (
    "cad.is_at_risk, cad.is_churned, sig.has_volume_drop, "
    "sig.expected_interval_days, sig.overdue_ratio, abc_class"
)
#: earlier as-of dates rebuilt one at a time (first and last of the window, the backtest
#: step, a quarter, a year)
EQUALITY_DATES = [D - timedelta(days=n) for n in (1, 7, 90, 365, HISTORY_DAYS - 1)]

pytestmark = pytest.mark.usefixtures("dbt_executable")


def _dbt(work: Path, as_of: date, *args: str, **extra_vars: object) -> None:
    dbt_vars = {
        "as_of_date": as_of.isoformat(),
        "history_days": HISTORY_DAYS,
        **extra_vars,
    }
    run_dbt(work / WORK_DB, *args, target=work / "target", dbt_vars=dbt_vars)


def _build_marts(work: Path, as_of: date, **extra_vars: object) -> None:
    """The clients marts (history included), without the unit tests (test_dbt_clients runs
    them) and without data tests on models outside the selection."""
    _dbt(
        work,
        as_of,
        "build",
        "--select",
        "+clients.marts",
        "--exclude",
        "test_type:unit",
        "--indirect-selection",
        "cautious",
        **extra_vars,
    )


@pytest.fixture(scope="module")
def raw_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("history_raw")
    # a small generated demo (60 clients, 3 years up to D)
    load_generated(base / "raw.duckdb", base / "sources", clients=60, end_date=D)
    return base / "raw.duckdb"


def _fresh(tmp_path_factory: pytest.TempPathFactory, name: str, raw: Path) -> Path:
    work = tmp_path_factory.mktemp(name)
    shutil.copy(raw, work / WORK_DB)
    return work


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, raw_template: Path) -> Path:
    work = _fresh(tmp_path_factory, "history_first_run", raw_template)
    _build_marts(work, D)
    return work


def test_first_run_reconstructs_the_window(history: Path) -> None:
    rows = query(
        history / WORK_DB,
        "select history_source, count(distinct as_of_date), min(as_of_date), max(as_of_date) "
        "from marts.client_status_history group by 1 order by 1",
    )
    assert rows == [
        ("daily_run", 1, D, D),
        ("reconstructed", HISTORY_DAYS - 1, D - timedelta(days=HISTORY_DAYS - 1), D - timedelta(1)),
    ]
    # risk_level (CRM signals) only on the daily rows
    assert query(
        history / WORK_DB,
        "select count(*) from marts.client_status_history "
        "where history_source = 'reconstructed' and risk_level is not null",
    ) == [(0,)]


@pytest.mark.parametrize("as_of", EQUALITY_DATES, ids=str)
def test_reconstructed_rows_equal_the_daily_models(
    tmp_path_factory: pytest.TempPathFactory, raw_template: Path, history: Path, as_of: date
) -> None:
    daily = _fresh(tmp_path_factory, f"daily_{as_of}", raw_template)
    _dbt(
        daily,
        as_of,
        "build",
        "--resource-type",
        "seed",
        "--resource-type",
        "model",
        "--select",
        *DAILY_SELECT,
    )
    # The history's reconstructed rows judge churned / at risk by the cadence rule (the churn
    # score is fitted once per run, for D: docs/rules.md "Status history"), the daily models
    # by the churn score. So the flags are compared with the daily build's cadence rule
    # (int_clients__cadence), and the lifecycle wherever the two rules flag alike.
    expected = query(
        daily / WORK_DB,
        f"""
        select life.client_id, {CADENCE_COMPARED},
            life.lifecycle_stage, life.status_group,
            cad.is_churned = sig.is_churned and cad.is_at_risk = sig.is_at_risk as rules_agree
        from intermediate.int_clients__lifecycle_today as life
        left join intermediate.int_clients__cadence as cad using (client_id)
        left join marts.client_churn_signals as sig using (client_id)
        left join marts.client_abc using (client_id)
        order by 1
        """,
    )
    got = query(
        history / WORK_DB,
        f"""
        select client_id, {CADENCE_COMPARED.replace("cad.", "").replace("sig.", "")},
            lifecycle_stage, status_group
        from marts.client_status_history
        where as_of_date = date '{as_of}' order by 1
        """,
    )
    assert len(expected) > 10
    assert [row[:-2] for row in got] == [row[:-3] for row in expected]
    agree = [row[:-1] for row in expected if row[-1]]
    assert len(agree) > 10
    by_client = {row[0]: row for row in got}
    assert [by_client[row[0]] for row in agree] == agree


# ---------------------------------------------------------------- planted and incremental


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("history_planted")
    con = duckdb.connect(str(work / WORK_DB))
    try:
        populate_planted_clients(con)
    finally:
        con.close()
    _build_marts(work, D)
    return work


def test_planted_weekly_buyer_that_stops(planted: Path) -> None:
    # gone buys weekly from 2025-09-01 until 2026-08-03 (expected 7 days, factors 1.5 / 3.0):
    # at risk from 08-03 + ceil(1.5 x 7) = 08-14, churned from 08-03 + ceil(3 x 7) = 08-24
    transitions = query(
        planted / WORK_DB,
        "select from_stage, to_stage, transition_date, days_in_previous_stage "
        "from marts.client_stage_transitions where client_id = 'gone' "
        "and transition_date >= date '2026-08-01' order by transition_date",
    )
    assert transitions[-2:] == [
        ("maturity", "decline", date(2026, 8, 14), 13),  # maturity since 08-01 (see below)
        ("decline", "churn", date(2026, 8, 24), 10),
    ]
    stages = dict(
        query(
            planted / WORK_DB,
            "select as_of_date, lifecycle_stage from marts.client_status_history "
            "where client_id = 'gone' and as_of_date between date '2026-08-13' and "
            "date '2026-08-24'",
        )
    )
    assert stages[date(2026, 8, 13)] != "decline"
    assert all(stages[date(2026, 8, 14) + timedelta(n)] == "decline" for n in range(10))
    assert stages[date(2026, 8, 24)] == "churn"
    life = query(
        planted / WORK_DB,
        "select stage_since, previous_stage from marts.client_lifecycle where client_id = 'gone'",
    )
    assert life == [(date(2026, 8, 24), "decline")]
    # the first row of every client is "first seen" (no previous stage, no duration)
    firsts = query(
        planted / WORK_DB,
        "select client_id, count(*) from marts.client_stage_transitions "
        "where from_stage is null group by 1 having count(*) != 1 "
        "or min(days_in_previous_stage) is not null",
    )
    assert firsts == []


def _snapshot(work: Path, before: date) -> list[tuple]:
    return query(
        work / WORK_DB,
        f"select * from marts.client_status_history where as_of_date < date '{before}' "
        "order by as_of_date, client_id",
    )


def _rows_per_source(work: Path, since: date) -> list[tuple]:
    return query(
        work / WORK_DB,
        "select as_of_date, history_source, count(*) from marts.client_status_history "
        f"where as_of_date >= date '{since}' group by 1, 2 order by 1, 2",
    )


def test_incremental_runs_gaps_and_backfill(planted: Path) -> None:
    d1, d3 = D + timedelta(1), D + timedelta(3)
    older = _snapshot(planted, d1)
    transitions_before = query(
        planted / WORK_DB,
        f"select * from marts.client_stage_transitions where transition_date < date '{d1}' "
        "order by 1, 4",
    )
    # the next day: only its own rows, from the daily models; nothing rebuilt
    _build_marts(planted, d1)
    assert query(
        planted / WORK_DB,
        "select count(*) from intermediate.int_clients__as_of_dates where is_history_date",
    ) == [(0,)]
    rebuilt = "select count(*) from intermediate.int_clients__lifecycle_days where is_history_date"
    assert query(planted / WORK_DB, rebuilt) == [(0,)]
    assert _rows_per_source(planted, D) == [(D, "daily_run", 5), (d1, "daily_run", 5)]
    assert _snapshot(planted, d1) == older
    assert (
        query(
            planted / WORK_DB,
            f"select * from marts.client_stage_transitions where transition_date < date '{d1}' "
            "order by 1, 4",
        )
        == transitions_before
    )

    # a skipped day (D+2) is reconstructed by the run of D+3
    _build_marts(planted, d3)
    assert _rows_per_source(planted, d1) == [
        (d1, "daily_run", 5),
        (d1 + timedelta(1), "reconstructed", 5),
        (d3, "daily_run", 5),
    ]
    assert _snapshot(planted, d1) == older

    # a backfill from D-2: D-2 .. D+2 rebuilt (reconstructed), D+3 from the daily models,
    # everything before D-2 untouched
    start = D - timedelta(2)
    before_backfill = _snapshot(planted, start)
    _build_marts(planted, d3, rebuild_from=start.isoformat())
    assert _rows_per_source(planted, start) == [
        (start + timedelta(n), "reconstructed", 5) for n in range(5)
    ] + [(d3, "daily_run", 5)]
    assert _snapshot(planted, start) == before_backfill
    # the rebuilt D rows carry the same stages as the daily run of D wrote
    assert query(
        planted / WORK_DB,
        f"select client_id, lifecycle_stage from marts.client_status_history "
        f"where as_of_date = date '{D}' order by 1",
    ) == sorted(_stages_at(older, D))
    # transitions are the same as those recomputed from the whole history
    assert query(planted / WORK_DB, _TRANSITIONS_FROM_SCRATCH) == []


def _stages_at(rows: list[tuple], day: date) -> list[tuple]:
    # columns of client_status_history: as_of_date, client_id, lifecycle_stage, ...
    return [(r[1], r[2]) for r in rows if r[0] == day]


#: client_stage_transitions (built incrementally) against a recomputation from scratch
_TRANSITIONS_FROM_SCRATCH = """
with seq as (
    select client_id, as_of_date, lifecycle_stage,
           lag(lifecycle_stage) over (partition by client_id order by as_of_date) as prev
    from marts.client_status_history
), scratch as (
    select client_id, prev as from_stage, lifecycle_stage as to_stage,
           as_of_date as transition_date,
           cast(date_diff('day', lag(as_of_date) over (partition by client_id order by as_of_date),
                          as_of_date) as integer) as days_in_previous_stage
    from seq where prev is null or prev != lifecycle_stage
)
(select * from scratch except all select * from marts.client_stage_transitions)
union all
(select * from marts.client_stage_transitions except all select * from scratch)
"""
