"""dbt clients/marts on a tiny raw work DB: unit tests, data tests and planted behaviours.

One `dbt build --select +clients.marts` (unit tests included) at D1, then `dbt run` at D2 and
a re-run of D1 to check that client_status_history keeps one set of rows per date. The first
run reconstructs the KAM_HISTORY_DAYS days before D1 (tests/dbt/test_dbt_history.py checks
those rows against the daily models), so stage_since is a date of the history, not D1.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.extract.raw_schema import ensure_raw_schema
from pipelines.settings import declared_default

ROOT = Path(__file__).resolve().parents[2]
DBT = ROOT / ".venv" / "bin" / "dbt"
PROJECT = ROOT / "dbt"
D1 = "2026-09-30"
D2 = "2026-10-31"

#: the run parameter KAM_HISTORY_DAYS at its default (dbt needs it with as_of_date)
HISTORY_DAYS = declared_default("history_days")
pytestmark = pytest.mark.skipif(not DBT.exists(), reason="dbt is not installed in .venv")

LOADED = "timestamp '2026-09-30 00:00:00'"


def _populate(con: duckdb.DuckDBPyConnection) -> None:
    """Plant a few clients whose classification is known by construction (D1 = 2026-09-30)."""
    ensure_raw_schema(con)
    con.execute(
        f"""
        insert into raw_crm.managers (manager_id, manager_name, level, team, hired_at, left_at,
                                      _run_id, _loaded_at)
        values ('m1', 'Manager One', 'head', 'north', date '2020-01-01', null, 't', {LOADED})
        """
    )
    con.execute(
        f"""
        insert into raw_erp.products (product_id, product_name, category, updated_at, _run_id,
                                      _loaded_at)
        values ('p1', 'Product', 'cat', {LOADED}, 't', {LOADED})
        """
    )
    clients = [
        ("big", "retail"),  # weekly buyer, on time, the largest -> A, poor payer
        ("drop", "retail"),  # weekly, on time, a quarter of its baseline in the last 90 days
        ("gone", "horeca"),  # weekly until 2026-08-03 -> churned; decision maker left
        ("yearly", "retail"),  # once a year, 200 days after its last order
        ("newbie", "horeca"),  # first order 2026-09-10 -> acquisition
        ("noorders", "retail"),  # never ordered
    ]
    for client_id, segment in clients:
        con.execute(
            f"""
            insert into raw_erp.clients (client_id, client_name, segment, region, industry,
                account_manager_id, declared_tier, payment_terms_days, created_at, updated_at,
                _run_id, _loaded_at)
            values (?, ?, ?, 'north', 'food', 'm1', 'key', 30, timestamp '2020-01-01 00:00:00',
                    {LOADED}, 't', {LOADED})
            """,
            [client_id, client_id.title(), segment],
        )
    # Orders: (client, first day, number of weekly orders, amount before / from 2026-07-03).
    weekly = [("big", 57, 1000.0, 1000.0), ("drop", 57, 1000.0, 250.0), ("gone", 49, 500.0, 500.0)]
    for client_id, count, before, after in weekly:
        con.execute(
            f"""
            insert into raw_erp.orders (order_id, client_id, order_date, status, updated_at,
                                        _run_id, _loaded_at)
            select ? || '-' || i, ?, date '2025-09-01' + cast(7 * i as integer), 'completed',
                   {LOADED}, 't', {LOADED}
            from range(0, ?) as t(i)
            """,
            [client_id, client_id, count],
        )
        con.execute(
            f"""
            insert into raw_erp.order_lines (order_id, line_no, product_id, quantity, unit_price,
                                             unit_cost, discount, _run_id, _loaded_at)
            select order_id, 1, 'p1', 10,
                   case when order_date < date '2026-07-03' then ? else ? end / 10,
                   case when order_date < date '2026-07-03' then ? else ? end / 10 * 0.6,
                   0, 't', {LOADED}
            from raw_erp.orders where client_id = ?
            """,
            [before, after, before, after, client_id],
        )
    single = [
        ("yearly-1", "yearly", "2023-03-14", 5000.0),
        ("yearly-2", "yearly", "2024-03-14", 5000.0),
        ("yearly-3", "yearly", "2025-03-14", 5000.0),
        ("yearly-4", "yearly", "2026-03-14", 5000.0),
        ("newbie-1", "newbie", "2026-09-10", 300.0),
        ("newbie-2", "newbie", "2026-09-20", 300.0),
    ]
    for order_id, client_id, day, amount in single:
        con.execute(
            f"""
            insert into raw_erp.orders (order_id, client_id, order_date, status, updated_at,
                                        _run_id, _loaded_at)
            values (?, ?, cast(? as date), 'completed', {LOADED}, 't', {LOADED})
            """,
            [order_id, client_id, day],
        )
        con.execute(
            f"""
            insert into raw_erp.order_lines (order_id, line_no, product_id, quantity, unit_price,
                                             unit_cost, discount, _run_id, _loaded_at)
            values (?, 1, 'p1', 1, ?, ?, 0, 't', {LOADED})
            """,
            [order_id, amount, amount * 0.5],
        )
    # big: 2 late invoices of 4 (paid 42 days late; unpaid 60 days after due at D1).
    invoices = [
        ("i1", "2026-01-01", "2026-02-01", "2026-03-15"),
        ("i2", "2026-02-01", "2026-03-01", "2026-03-01"),
        ("i3", "2026-07-01", "2026-08-01", None),
        ("i4", "2026-08-01", "2026-09-01", "2026-09-01"),
    ]
    for invoice_id, issued, due, paid in invoices:
        con.execute(
            f"""
            insert into raw_erp.invoices (invoice_id, client_id, order_id, issued_date, due_date,
                amount, paid_date, updated_at, _run_id, _loaded_at)
            values (?, 'big', null, cast(? as date), cast(? as date), 100, cast(? as date),
                    {LOADED}, 't', {LOADED})
            """,
            [invoice_id, issued, due, paid],
        )
    con.execute(
        f"""
        insert into raw_crm.contacts (contact_id, client_id, full_name, position, level,
            is_decision_maker, started_at, left_at, updated_at, _run_id, _loaded_at)
        values ('k1', 'gone', 'Pat Buyer', 'CEO', 'director', true, date '2020-01-01',
                date '2026-09-01', {LOADED}, 't', {LOADED})
        """
    )
    con.execute(
        f"""
        insert into raw_crm.interactions (interaction_id, client_id, contact_id, manager_id,
            occurred_at, channel, kind, satisfaction, resolved_at, updated_at, _run_id, _loaded_at)
        values ('x1', 'big', null, 'm1', timestamp '2026-09-20 10:00:00', 'call', 'complaint',
                2, null, {LOADED}, 't', {LOADED})
        """
    )


def _dbt(work: Path, as_of: str, *args: str) -> subprocess.CompletedProcess:
    """Run dbt at one as-of date. One target path per date: dbt re-parses the whole project when
    vars change, so a re-run of a date reuses that date's partial-parse state."""
    env = {
        **os.environ,
        "KAM_WORK_DB": str(work / "work.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    cmd = [
        str(DBT),
        *args,
        "--vars",
        json.dumps({"as_of_date": as_of, "history_days": HISTORY_DAYS}),
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target-path",
        str(work / f"target-{as_of}"),
        "--log-path",
        str(work / "logs"),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result


def _query(work: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(work / "work.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _rows_by_client(work: Path, table: str, columns: str) -> dict[str, tuple]:
    rows = _query(work, f"select client_id, {columns} from marts.{table}")
    return {row[0]: row[1:] for row in rows}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("dbt_clients")
    con = duckdb.connect(str(work / "work.duckdb"))
    try:
        _populate(con)
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
    ours = {
        uid
        for uid in manifest["unit_tests"]
        if uid.split(".")[2].startswith(("int_clients__", "client_"))
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
    (total,) = _query(built, "select sum(revenue_share) from marts.client_abc where is_ranked")[0]
    assert total == pytest.approx(1.0)
    (as_of,) = _query(built, "select distinct as_of_date from marts.client_abc")[0]
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
    daily = _query(
        built,
        "select distinct as_of_date from marts.client_status_history "
        "where history_source = 'daily_run' order by 1",
    )
    assert [d for (d,) in daily] == [date(2026, 9, 30), date(2026, 10, 31)]
    (days, first) = _query(
        built, "select count(distinct as_of_date), min(as_of_date) from marts.client_status_history"
    )[0]
    assert days == HISTORY_DAYS + 31 and first == date(2026, 9, 30) - timedelta(HISTORY_DAYS - 1)
    before = _query(built, history_sql)
    at_d1_d2 = [r for r in before if r[0] in (date(2026, 9, 30), date(2026, 10, 31))]
    assert len(at_d1_d2) == 10  # five clients with orders, two dates

    life = _rows_by_client(
        built, "client_lifecycle", "lifecycle_stage, stage_since, previous_stage"
    )
    assert life["gone"] == ("churn", date(2026, 8, 24), "decline")  # churned since 08-24
    # drop last ordered 2026-09-28: churned 21 days later (in decline by volume before)
    assert life["drop"] == ("churn", date(2026, 10, 19), "decline")

    _dbt(built, D1, "run", "--select", "+clients.marts")
    assert _query(built, history_sql) == before
    # Back at D1, the later D2 rows are ignored by client_lifecycle.
    life = _rows_by_client(
        built, "client_lifecycle", "lifecycle_stage, stage_since, previous_stage"
    )
    assert life["drop"] == ("decline", date(2026, 8, 16), "maturity")
