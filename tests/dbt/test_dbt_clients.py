"""dbt clients/marts on a tiny raw work DB: unit tests, data tests and planted behaviours.

One `dbt build --select +clients.marts` (unit tests included) at D1, then `dbt run` at D2 and
a re-run of D1 to check that client_status_history keeps one set of rows per date. The first
run reconstructs the KAM_HISTORY_DAYS days before D1 (tests/dbt/test_dbt_history.py checks
those rows against the daily models), so stage_since is a date of the history, not D1.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from dbt_support import HISTORY_DAYS, WORK_DB, query, run_dbt
from planted_clients import populate_planted_clients

D1 = "2026-09-30"
D2 = "2026-10-31"

pytestmark = pytest.mark.usefixtures("dbt_executable")


def _dbt(work: Path, as_of: str, *args: str) -> subprocess.CompletedProcess:
    """Run dbt at one as-of date. One target path per date: dbt re-parses the whole project when
    vars change, so a re-run of a date reuses that date's partial-parse state."""
    return run_dbt(
        work / WORK_DB,
        *args,
        target=work / f"target-{as_of}",
        dbt_vars={"as_of_date": as_of, "history_days": HISTORY_DAYS},
        timeout=300,
    )


def _rows_by_client(work: Path, table: str, columns: str) -> dict[str, tuple]:
    rows = query(work / WORK_DB, f"select client_id, {columns} from marts.{table}")
    return {row[0]: row[1:] for row in rows}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("dbt_clients")
    con = duckdb.connect(str(work / WORK_DB))
    try:
        populate_planted_clients(con)
    finally:
        con.close()
    # Cautious: tests of models outside the selection (e.g. on stg_erp__products) are skipped.
    _dbt(work, D1, "build", "--select", "+clients.marts", "--indirect-selection", "cautious")
    # Keep the build's results: later runs in this module overwrite run_results.json.
    target = work / f"target-{D1}"
    (work / "build_results.json").write_text((target / "run_results.json").read_text())
    return work


def test_build_ran_the_unit_tests(built: Path) -> None:
    manifest = json.loads((built / f"target-{D1}" / "manifest.json").read_text())
    # the unit tests of the clients folder (client_overview, in actions, is built later)
    ours = {
        uid
        for uid, node in manifest["unit_tests"].items()
        if node["original_file_path"].startswith("models/clients/")
    }
    results = json.loads((built / "build_results.json").read_text())["results"]
    status = {r["unique_id"]: r["status"] for r in results}
    assert len(ours) >= 11
    assert {uid: status.get(uid) for uid in ours} == {uid: "pass" for uid in ours}


def test_abc_on_planted_clients(built: Path) -> None:
    abc = _rows_by_client(
        built, "client_abc", "abc_class, is_ranked, unranked_reason, revenue_rank"
    )
    assert abc["big"][0] == "A" and abc["big"][3] == 1
    assert abc["noorders"] == (None, False, "no orders in the window", None)
    ranked = [v for v in abc.values() if v[1]]
    assert sorted(v[3] for v in ranked) == list(range(1, len(ranked) + 1))
    (total,) = query(
        built / WORK_DB, "select sum(revenue_share) from marts.client_abc where is_ranked"
    )[0]
    assert total == pytest.approx(1.0)
    (as_of,) = query(built / WORK_DB, "select distinct as_of_date from marts.client_abc")[0]
    assert as_of == date(2026, 9, 30)


def test_churn_signals_on_planted_clients(built: Path) -> None:
    cols = (
        "is_at_risk, is_churned, has_volume_drop, expected_interval_days, interval_source, "
        "decision_maker_left, has_poor_payment_discipline, open_complaints, risk_level, reasons"
    )
    sig = _rows_by_client(built, "client_churn_signals", cols)
    # weekly, on time, buying a quarter of its baseline: not overdue but volume drop
    assert sig["drop"][:5] == (False, False, True, 7.0, "own_history")
    # weekly buyer silent since 2026-08-03 (58 days): churned; its decision maker left 2026-09-01
    assert sig["gone"][1] is True and sig["gone"][5] is True
    assert "churned: 58 days since last order" in sig["gone"][9]
    assert "decision maker left 2026-09-01" in sig["gone"][9]
    assert sig["gone"][8] in ("high", "critical")
    # once-a-year buyer 200 days after its last order: nothing, volume not judged
    assert sig["yearly"][:5] == (False, False, None, 365.0, "own_history")
    # newbie has 2 order days: takes the horeca norm, the median of the median gaps of the
    # segment's clients with 2+ order days: gone (7) and newbie itself (10) -> 8.5
    assert sig["newbie"][3:5] == (8.5, "segment_norm")
    assert sig["big"][6] is True and sig["big"][7] == 1
    assert sig["noorders"][0] is False and sig["noorders"][1] is False


def test_lifecycle_on_planted_clients(built: Path) -> None:
    life = _rows_by_client(
        built, "client_lifecycle", "lifecycle_stage, status_group, stage_since, goal"
    )
    assert set(life) == {"big", "drop", "gone", "yearly", "newbie"}  # noorders never ordered
    assert life["gone"][:2] == ("churn", "lost")
    assert life["drop"][:2] == ("decline", "at_risk")
    assert life["newbie"][:2] == ("acquisition", "new")
    assert life["yearly"][:2] == ("maturity", "active")
    assert all(v[3] for v in life.values())
    # since when, from the reconstructed history of the first run (not D1 for everyone):
    # gone was last seen 2026-08-03, churned 3 x 7 days later; newbie since its first order
    assert life["gone"][2] == date(2026, 8, 24)
    assert life["newbie"][2] == date(2026, 9, 10)
    assert life["drop"][2] == date(2026, 8, 16)


def test_status_history_two_dates_and_idempotent_rerun(built: Path) -> None:
    history_sql = "select * from marts.client_status_history order by as_of_date, client_id"
    _dbt(built, D2, "run", "--select", "+clients.marts")
    # D1 and D2 from the daily runs; the window before D1 and the 30 days between were
    # reconstructed (the run at D2 fills the gap)
    daily = query(
        built / WORK_DB,
        "select distinct as_of_date from marts.client_status_history "
        "where history_source = 'daily_run' order by 1",
    )
    assert [d for (d,) in daily] == [date(2026, 9, 30), date(2026, 10, 31)]
    (days, first) = query(
        built / WORK_DB,
        "select count(distinct as_of_date), min(as_of_date) from marts.client_status_history",
    )[0]
    assert days == HISTORY_DAYS + 31 and first == date(2026, 9, 30) - timedelta(HISTORY_DAYS - 1)
    before = query(built / WORK_DB, history_sql)
    at_d1_d2 = [r for r in before if r[0] in (date(2026, 9, 30), date(2026, 10, 31))]
    assert len(at_d1_d2) == 10  # five clients with orders, two dates

    life = _rows_by_client(
        built, "client_lifecycle", "lifecycle_stage, stage_since, previous_stage"
    )
    assert life["gone"] == ("churn", date(2026, 8, 24), "decline")  # churned since 08-24
    # drop last ordered 2026-09-28: churned 21 days later (in decline by volume before)
    assert life["drop"] == ("churn", date(2026, 10, 19), "decline")

    _dbt(built, D1, "run", "--select", "+clients.marts")
    assert query(built / WORK_DB, history_sql) == before
    # Back at D1, the later D2 rows are ignored by client_lifecycle.
    life = _rows_by_client(
        built, "client_lifecycle", "lifecycle_stage, stage_since, previous_stage"
    )
    assert life["drop"] == ("decline", date(2026, 8, 16), "maturity")
