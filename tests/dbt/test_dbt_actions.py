"""dbt build of the action marts (winback_candidates, kam_actions, manager_portfolio,
key_account_value) with their unit tests, on a tiny raw work DB written with INSERTs.

Scenario at D = 2026-09-30 (managers m1, m2 in team north, m3 in south, m4 north but gone):
* big1 (m1, KA): weekly orders up to D; a decision maker left on 2026-09-01, an open complaint,
  director and head contacts reached this year.
* lost1 (m1): large, profitable, monthly until 2025-12-15, last contact 2025-06-01 -> churned
  win-back candidate, silence among the reasons, handed to m2 (the other active north manager).
* lost2 (m2): large but sold below cost -> never a candidate.
* lost3 (m1): tiny (class C on its window) -> not a candidate.
* lost4 (m3): large, profitable, invoices paid 60 days late -> candidate with revised terms.
* risk1 (m3, declared key): monthly until 2026-07-20, never contacted -> call action.
"""

from __future__ import annotations

import subprocess
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
from dbt_support import HISTORY_DAYS, query, run_dbt

from pipelines.extract.raw_schema import ensure_raw_schema

AS_OF = date(2026, 9, 30)
CENT = Decimal("0.01")
LOADED = datetime(2026, 9, 30, 23, 0)

#: These tests plant clients for the action rules at the default churn factors (1.5 / 3.0);
#: with too few past cases the churn score leaves the flags to that rule (docs/rules.md).
UPSTREAM_TESTS = [
    f"resource_type:{kind},path:models/{folder}"
    for kind in ("test", "unit_test")
    for folder in ("staging", "core", "clients")
]

pytestmark = pytest.mark.usefixtures("dbt_executable")


def _months(start: date, end: date, day: int) -> list[date]:
    out, year, month = [], start.year, start.month
    while True:
        current = date(year, month, day)
        if current > end:
            return out
        if current >= start:
            out.append(current)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _weeks(start: date, end: date) -> list[date]:
    return [start + timedelta(days=7 * i) for i in range((end - start).days // 7 + 1)]


# client -> (order dates, unit_price, unit_cost)
ORDER_PLAN: dict[str, tuple[list[date], float, float]] = {
    "big1": (_weeks(date(2024, 6, 3), date(2026, 9, 28)), 1000.0, 600.0),
    "lost1": (_months(date(2024, 6, 15), date(2025, 12, 15), 15), 3000.0, 1800.0),
    "lost2": (_months(date(2024, 6, 15), date(2025, 12, 15), 15), 3000.0, 4000.0),
    "lost3": (_months(date(2024, 6, 15), date(2025, 12, 15), 15), 10.0, 5.0),
    "lost4": (_months(date(2024, 6, 15), date(2025, 12, 15), 15), 3000.0, 1800.0),
    "risk1": (_months(date(2024, 6, 20), date(2026, 7, 20), 20), 500.0, 300.0),
}


def _populate(db: Path) -> None:
    con = duckdb.connect(str(db))
    ensure_raw_schema(con)
    meta = [("run0", LOADED)]
    con.executemany(
        "insert into raw_crm.managers (manager_id, manager_name, level, team, hired_at, left_at,"
        " _run_id, _loaded_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("m1", "Ann", "specialist", "north", date(2020, 1, 1), None, *meta[0]),
            ("m2", "Bob", "specialist", "north", date(2020, 1, 1), None, *meta[0]),
            ("m3", "Cid", "specialist", "south", date(2020, 1, 1), None, *meta[0]),
            ("m4", "Dan", "specialist", "north", date(2020, 1, 1), date(2026, 1, 1), *meta[0]),
        ],
    )
    clients = [
        ("big1", "m1", "KA"),
        ("lost1", "m1", "general"),
        ("lost2", "m2", "general"),
        ("lost3", "m1", "general"),
        ("lost4", "m3", "general"),
        ("risk1", "m3", "key"),
    ]
    con.executemany(
        "insert into raw_erp.clients (client_id, client_name, segment, region, industry,"
        " account_manager_id, declared_tier, payment_terms_days, created_at, updated_at,"
        " _run_id, _loaded_at) values (?, ?, 'wholesale', 'eu', 'retail', ?, ?, 30, ?, ?, ?, ?)",
        [
            (cid, cid.upper(), mgr, tier, datetime(2024, 1, 1), LOADED, *meta[0])
            for cid, mgr, tier in clients
        ],
    )
    con.execute(
        "insert into raw_erp.products (product_id, product_name, category, updated_at, _run_id,"
        " _loaded_at) values ('p1', 'Widget', 'widgets', ?, 'run0', ?)",
        [LOADED, LOADED],
    )
    orders, lines = [], []
    for cid, (dates, price, cost) in ORDER_PLAN.items():
        for i, day in enumerate(dates):
            oid = f"{cid}-{i}"
            orders.append((oid, cid, day, "completed", LOADED, *meta[0]))
            lines.append((oid, 1, "p1", 1.0, price, cost, 0.0, *meta[0]))
    con.executemany(
        "insert into raw_erp.orders (order_id, client_id, order_date, status, updated_at,"
        " _run_id, _loaded_at) values (?, ?, ?, ?, ?, ?, ?)",
        orders,
    )
    con.executemany(
        "insert into raw_erp.order_lines (order_id, line_no, product_id, quantity, unit_price,"
        " unit_cost, discount, _run_id, _loaded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        lines,
    )
    # lost4 paid its last three invoices 60 days late: poor payment discipline.
    con.executemany(
        "insert into raw_erp.invoices (invoice_id, client_id, order_id, issued_date, due_date,"
        " amount, paid_date, updated_at, _run_id, _loaded_at) values (?, ?, null, ?, ?, 3000, ?, ?,"
        " 'run0', ?)",
        [
            (
                f"i{m}",
                "lost4",
                date(2025, m, 1),
                date(2025, m, 15),
                date(2025, m, 15) + timedelta(60),
            )
            + (LOADED, LOADED)
            for m in (10, 11, 12)
        ],
    )
    con.executemany(
        "insert into raw_crm.contacts (contact_id, client_id, full_name, position, level,"
        " is_decision_maker, started_at, left_at, updated_at, _run_id, _loaded_at)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, 'run0', ?)",
        [
            (
                "c_dm",
                "big1",
                "Gone Boss",
                "CEO",
                "director",
                True,
                date(2020, 1, 1),
                date(2026, 9, 1),
                LOADED,
                LOADED,
            ),
            (
                "c_dir",
                "big1",
                "New Boss",
                "CEO",
                "director",
                True,
                date(2026, 9, 1),
                None,
                LOADED,
                LOADED,
            ),
            (
                "c_head",
                "big1",
                "Head Buyer",
                "Head",
                "head",
                False,
                date(2020, 1, 1),
                None,
                LOADED,
                LOADED,
            ),
            (
                "c_l1",
                "lost1",
                "Buyer",
                "Buyer",
                "specialist",
                False,
                date(2020, 1, 1),
                None,
                LOADED,
                LOADED,
            ),
        ],
    )
    con.executemany(
        "insert into raw_crm.interactions (interaction_id, client_id, contact_id, manager_id,"
        " occurred_at, channel, kind, satisfaction, resolved_at, updated_at, _run_id, _loaded_at)"
        " values (?, ?, ?, ?, ?, ?, ?, null, null, ?, 'run0', ?)",
        [
            row + (LOADED, LOADED)
            for row in [
                ("x1", "big1", "c_head", "m1", datetime(2026, 9, 10, 10), "call", "complaint"),
                ("x2", "big1", "c_dir", "m1", datetime(2026, 9, 20, 10), "meeting", "touch"),
                ("x3", "big1", "c_head", "m1", datetime(2026, 8, 1, 10), "email", "touch"),
                ("x4", "lost1", "c_l1", "m1", datetime(2025, 6, 1, 10), "call", "touch"),
            ]
        ],
    )
    con.execute(
        "insert into raw_meta.source_systems values"
        " ('erp', true, 'test', ?), ('crm', true, 'test', ?)",
        [LOADED, LOADED],
    )
    con.close()


def _dbt(db: Path, target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_dbt(db, *args, target=target / "target", check=False, timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dbt_actions")
    db = tmp / "work.duckdb"
    _populate(db)
    result = _dbt(
        db,
        tmp,
        "build",
        "--select",
        "+actions.marts",
        "--indirect-selection",
        "cautious",
        # Upstream tests belong to their own suites; here: the parents' models and seeds,
        # plus the data and unit tests of the action models.
        "--exclude",
        *UPSTREAM_TESTS,
        "--vars",
        f"{{as_of_date: '{AS_OF.isoformat()}', has_crm: true, history_days: {HISTORY_DAYS}}}",
    )
    assert result.returncode == 0, result.stdout[-6000:]
    # The unit tests of the action models ran (and passed, or the build would have failed).
    assert "ut_winback_assignment_never_lost_manager_same_team_lightest" in result.stdout
    return db


def test_winback_candidates_follow_the_rules(built: Path) -> None:
    rows = query(
        built,
        "select client_id, lost_by_manager_id, suggested_manager_id, requires_revised_terms,"
        " churn_reasons, priority, value_before_leaving"
        " from marts.winback_candidates order by priority",
    )
    by_client = {r[0]: r for r in rows}
    # lost2 sold below cost (unprofitable) and lost3 is class C: never candidates.
    assert set(by_client) == {"lost1", "lost4"}
    lost1 = by_client["lost1"]
    assert lost1[1] == "m1"
    # m1 lost it, m4 (same team) has left: the only active north manager left is m2.
    assert lost1[2] == "m2"
    assert "silence" in lost1[4]
    assert lost1[3] is False
    lost4 = by_client["lost4"]
    assert lost4[1] == "m3" and lost4[2] not in (None, "m3", "m4")
    assert lost4[3] is True and "payment" in lost4[4]
    # 12 monthly orders of 3000 in the year up to 2025-12-15 for both.
    assert lost1[6] == Decimal("36000.00")  # money is DECIMAL(18,2): exact to the cent
    assert sorted(r[5] for r in rows) == [1, 2]


def test_kam_actions_lists_the_expected_todos(built: Path) -> None:
    rows = query(
        built,
        "select manager_id, client_id, action_type, priority, due_date from marts.kam_actions",
    )
    actions = {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}
    assert actions[("m1", "big1", "meet_new_decision_maker")] == (1, AS_OF + timedelta(2))
    assert actions[("m1", "big1", "resolve_open_complaint")][0] == 3
    assert ("m3", "risk1", "call_key_client_at_risk") in actions
    assert ("m2", "lost1", "plan_winback") in actions
    # The manager who lost a client never gets its win-back, and big1 was contacted recently.
    assert not any(k[1] == "lost1" and k[0] == "m1" for k in actions)
    assert ("m1", "big1", "call_key_client_at_risk") not in actions


def test_comb_and_value_exchange(built: Path) -> None:
    comb = query(
        built,
        "select has_director_reached, has_head_reached, has_specialist_reached, levels_covered"
        " from intermediate.int_actions__comb_coverage where client_id = 'big1'",
    )
    # The decision maker who left does not count; the new director and the head do.
    assert comb == [(True, True, False, 2)]
    m3 = query(
        built,
        "select key_client_count, key_clients_contacted_recent_share, comb_full_share"
        " from marts.manager_portfolio where manager_id = 'm3'",
    )
    assert m3[0][0] >= 1 and m3[0][1] == 0.0 and m3[0][2] == 0.0
    kav = query(
        built,
        "select revenue_365d, interactions_365d, complaints_365d, meetings_365d,"
        " margin_per_interaction from marts.key_account_value where client_id = 'big1'",
    )
    dates, price, cost = ORDER_PLAN["big1"]
    in_year = [d for d in dates if AS_OF - timedelta(364) <= d <= AS_OF]
    assert kav[0][0] == Decimal(price * len(in_year)).quantize(CENT)
    assert kav[0][1:4] == (3, 1, 1)
    expected = (Decimal(price - cost) * len(in_year) / 3).quantize(CENT, ROUND_HALF_UP)
    assert kav[0][4] == expected


def test_without_crm_crm_columns_are_null(built: Path, tmp_path: Path) -> None:
    result = _dbt(
        built,
        tmp_path,
        "run",
        "--select",
        "path:models/actions",
        "--vars",
        f"{{as_of_date: '{AS_OF.isoformat()}', has_crm: false, history_days: {HISTORY_DAYS}}}",
    )
    assert result.returncode == 0, result.stdout[-6000:]
    types = query(built, "select distinct action_type from marts.kam_actions")
    assert {t[0] for t in types} == {"call_key_client_at_risk", "plan_winback"}
    assert query(built, "select count(*) from marts.kam_actions where client_id = 'risk1'") == [
        (1,)
    ]
    # Without CRM the managers are the ERP's account managers (no teams, all active): the
    # win-back goes to the one with the fewest A clients other than the one who lost it.
    suggested = query(
        built,
        "select client_id, lost_by_manager_id, suggested_manager_id, is_same_team_suggestion,"
        " reason_silence from marts.winback_candidates order by client_id",
    )
    assert [s[0] for s in suggested] == ["lost1", "lost4"]
    for _client, lost_by, suggested_id, same_team, silence in suggested:
        assert suggested_id is not None and suggested_id != lost_by
        assert same_team is None and silence is None
    winback = query(
        built,
        "select manager_id, manager_name, reason from marts.kam_actions"
        " where action_type = 'plan_winback' order by client_id",
    )
    assert [w[0] for w in winback] == [s[2] for s in suggested]
    assert all(w[1] is None for w in winback)
    assert all("contact history unknown (no CRM)" in w[2] for w in winback)
    assert "value 36,000.00 (class" in winback[0][2]
    comb = query(
        built,
        "select count(*) from marts.manager_portfolio where comb_director_share is not null"
        " or key_clients_contacted_recent is not null",
    )
    assert comb == [(0,)]
