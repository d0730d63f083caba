"""Great Expectations validation helper and the declared checks (no Dagster)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import great_expectations as gx
import pandas as pd
import pytest

from pipelines import quality
from pipelines.contract import get_table
from pipelines.quality import (
    MART_CHECKS,
    CheckContext,
    applicable_checks,
    raw_checks,
    run_checks,
    validate_frame,
)
from pipelines.raw_schema import ensure_raw_schema

E = gx.expectations
CTX = CheckContext(as_of=date(2026, 9, 30), today=date(2026, 10, 1))


def _orders_expectations() -> list:
    return [
        E.ExpectColumnValuesToNotBeNull(column="order_id"),
        E.ExpectColumnValuesToBeUnique(column="order_id"),
        E.ExpectColumnValuesToBeInSet(
            column="status", value_set=["completed", "cancelled", "returned"]
        ),
    ]


def test_validate_frame_passes_good_data() -> None:
    df = pd.DataFrame({"order_id": ["o1", "o2", "o3"], "status": ["completed", "returned", None]})
    outcome = validate_frame(df, _orders_expectations(), "orders")
    assert outcome.success, outcome.summary()
    assert outcome.evaluated == 3
    assert outcome.failures == []
    assert outcome.error is None
    assert outcome.rows == 3


def test_validate_frame_fails_bad_data_with_details() -> None:
    df = pd.DataFrame(
        {"order_id": ["o1", "o2", "o2", None], "status": ["completed", "lost", "returned", "x"]}
    )
    outcome = validate_frame(df, _orders_expectations(), "orders")
    assert not outcome.success
    assert outcome.evaluated == 3
    by_type = {f["expectation"]: f for f in outcome.failures}
    assert set(by_type) == {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_in_set",
    }
    assert by_type["expect_column_values_to_not_be_null"]["unexpected_count"] == 1
    assert by_type["expect_column_values_to_be_unique"]["unexpected_count"] == 2
    assert by_type["expect_column_values_to_be_unique"]["sample"] == ["o2", "o2"]
    in_set = by_type["expect_column_values_to_be_in_set"]
    assert in_set["column"] == "status"
    assert in_set["unexpected_count"] == 2
    assert sorted(in_set["sample"]) == ["lost", "x"]
    assert "status" in outcome.summary()


def test_gx_exception_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_context():
        raise RuntimeError("GX exploded")

    monkeypatch.setattr(quality, "_context", broken_context)
    df = pd.DataFrame({"order_id": ["o1"], "status": ["completed"]})
    outcome = validate_frame(df, _orders_expectations(), "orders")
    assert outcome.success is False
    assert "GX exploded" in (outcome.error or "")


def test_missing_column_is_a_failure() -> None:
    df = pd.DataFrame({"order_id": ["o1"]})
    outcome = validate_frame(
        df, [E.ExpectColumnValuesToBeInSet(column="status", value_set=["completed"])], "orders"
    )
    assert outcome.success is False
    assert outcome.failures


def test_no_expectations_is_not_a_pass() -> None:
    outcome = validate_frame(pd.DataFrame({"a": [1]}), [], "empty")
    assert outcome.success is False


def test_raw_checks_cover_contract() -> None:
    checks = {(c.asset, c.name) for c in raw_checks()}
    assert (("erp", "orders"), "keys_unique_not_null") in checks
    assert (("erp", "orders"), "references_exist") in checks
    assert (("erp", "order_lines"), "references_exist") in checks
    assert (("erp", "orders"), "allowed_values") in checks
    assert (("erp", "orders"), "no_future_dates") in checks
    assert (("crm", "interactions"), "allowed_values") in checks
    # every contract table has its key check
    assert all((key, "keys_unique_not_null") in checks for key, _ in checks)


@pytest.fixture
def raw_db(tmp_path: Path) -> Path:
    path = tmp_path / "work.duckdb"
    con = duckdb.connect(str(path))
    ensure_raw_schema(con)
    con.execute(
        "insert into raw_erp.clients (client_id, segment, declared_tier, updated_at) values "
        "('c1', 'retail', 'KA', '2026-01-01'), ('c2', 'retail', 'general', '2026-01-01')"
    )
    con.execute(
        "insert into raw_erp.orders (order_id, client_id, order_date, status, updated_at) values "
        "('o1', 'c1', '2026-09-01', 'completed', '2026-09-01'),"
        "('o2', 'c2', '2026-10-15', 'returned', '2026-10-15')"  # after as-of: legitimate
    )
    con.execute(
        "insert into raw_erp.order_lines (order_id, line_no, quantity, unit_price) values "
        "('o1', 1, 2, 10.0), ('o2', 1, 1, 5.0)"
    )
    con.close()
    return path


def _outcomes(path: Path, table: str, today: date = date(2026, 10, 20)):
    ctx = CheckContext(as_of=date(2026, 9, 30), today=today)
    checks = raw_checks([get_table("erp", table)])
    return {c.name: o for c, o in run_checks(path, checks, ctx)}


def test_raw_checks_pass_on_clean_raw_layer(raw_db: Path) -> None:
    for table in ("clients", "orders", "order_lines"):
        for name, outcome in _outcomes(raw_db, table).items():
            assert outcome.success, f"{table}.{name}: {outcome.summary()}"


def test_raw_checks_catch_orphans_bad_values_and_future_dates(raw_db: Path) -> None:
    con = duckdb.connect(str(raw_db))
    con.execute(
        "insert into raw_erp.orders (order_id, client_id, order_date, status, updated_at) values "
        "('o3', 'c404', '2026-09-02', 'shipped', '2026-09-02'),"
        "('o1', 'c1', '2027-01-01', 'completed', '2026-09-03')"
    )
    con.execute(
        "insert into raw_erp.order_lines (order_id, line_no, quantity, unit_price) values "
        "('o999', 1, 1, 1.0)"
    )
    con.close()
    orders = _outcomes(raw_db, "orders")
    refs = orders["references_exist"]
    assert not refs.success
    assert refs.failures[0]["unexpected_count"] == 1
    assert refs.failures[0]["sample"][0][0] == "c404"
    allowed = orders["allowed_values"]
    assert not allowed.success and allowed.failures[0]["sample"] == ["shipped"]
    keys = orders["keys_unique_not_null"]
    assert not keys.success and keys.failures[0]["sample"] == ["o1", "o1"]
    future = orders["no_future_dates"]
    assert not future.success
    assert future.failures[0]["column"] == "order_date"
    assert future.failures[0]["unexpected_count"] == 1
    lines = _outcomes(raw_db, "order_lines")
    assert not lines["references_exist"].success
    assert lines["references_exist"].failures[0]["sample"][0][0] == "o999"


def test_future_dates_judged_against_wall_clock(raw_db: Path) -> None:
    # o2 (2026-10-15) is after the as-of date but not after today: passes; the day before
    # it happened, the same row is an impossible future date.
    assert _outcomes(raw_db, "orders", today=date(2026, 10, 15))["no_future_dates"].success
    assert not _outcomes(raw_db, "orders", today=date(2026, 10, 14))["no_future_dates"].success


def test_mart_checks_on_a_small_mart(tmp_path: Path) -> None:
    path = tmp_path / "work.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.client_abc as select * from (values "
        "('c1', 0.7, true, 'A'), ('c2', 0.3, true, 'B'), ('c3', null, false, null)) "
        "t(client_id, revenue_share, is_ranked, abc_class)"
    )
    con.execute(
        "create table marts.fct_orders as select * from (values "
        "('o1', date '2026-09-30', 'completed'), ('o2', date '2026-10-01', 'completed')) "
        "t(order_id, order_date, status)"
    )
    con.close()
    available = {
        "marts.client_abc": ["client_id", "revenue_share", "is_ranked", "abc_class"],
        "marts.fct_orders": ["order_id", "order_date", "status"],
    }
    checks = applicable_checks(MART_CHECKS, available)
    names = {(c.relation, c.name) for c in checks}
    # client_abc's value-set check needs xyz_class, absent here: not applicable
    assert ("marts.client_abc", "values_in_sets") not in names
    assert ("marts.client_abc", "revenue_shares_sum_to_one") in names
    assert not any(c.relation == "marts.dim_clients" for c in checks)
    outcomes = {(c.relation, c.name): o for c, o in run_checks(path, checks, CTX)}
    assert outcomes[("marts.client_abc", "revenue_shares_sum_to_one")].success
    assert outcomes[("marts.client_abc", "keys_unique_not_null")].success
    late = outcomes[("marts.fct_orders", "no_order_after_as_of")]
    assert not late.success
    assert late.failures[0]["sample"][0].startswith("2026-10-01")

    con = duckdb.connect(str(path))
    con.execute("update marts.client_abc set revenue_share = 0.6 where client_id = 'c2'")
    con.close()
    share = dict(((c.relation, c.name), o) for c, o in run_checks(path, checks, CTX))[
        ("marts.client_abc", "revenue_shares_sum_to_one")
    ]
    assert not share.success
    assert share.failures[0]["sample"][0] == pytest.approx(1.3)


def test_mart_check_names_unique_per_asset() -> None:
    keys = [(c.asset, c.name) for c in MART_CHECKS]
    assert len(keys) == len(set(keys))
    assert all(c.asset[0] == "marts" for c in MART_CHECKS)


def test_end_of_day_bound() -> None:
    assert quality._end_of(date(2026, 1, 1)) == datetime(2026, 1, 1, 23, 59, 59, 999999)
