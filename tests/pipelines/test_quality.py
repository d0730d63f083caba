"""Great Expectations validation helper and the declared checks (no Dagster)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import great_expectations as gx
import pandas as pd
import pytest
from mart_fixtures import SMALL_MART_COLUMNS, write_small_marts

from pipelines.contract import get_table
from pipelines.extract.raw_schema import ensure_raw_schema
from pipelines.quality import checks, engine, mart_checks
from pipelines.quality import raw_checks as raw_checks_module
from pipelines.quality.checks import CheckContext, applicable_checks
from pipelines.quality.engine import validate_frame
from pipelines.quality.mart_checks import MART_CHECKS
from pipelines.quality.raw_checks import raw_checks
from pipelines.quality.runner import run_checks

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

    monkeypatch.setattr(engine, "_context", broken_context)
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
    path = write_small_marts(tmp_path / "work.duckdb")
    available = SMALL_MART_COLUMNS
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
    assert raw_checks_module.end_of(date(2026, 1, 1)) == datetime(2026, 1, 1, 23, 59, 59, 999999)


def test_outcome_lists_every_expectation_with_sample_rows() -> None:
    df = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4"],
            "client_id": ["c1", "c2", "c3", "c4"],
            "status": ["completed", "lost", "returned", "lost"],
        }
    )
    expectations = [
        E.ExpectColumnValuesToNotBeNull(column="order_id"),
        E.ExpectColumnValuesToBeInSet(column="status", value_set=["completed", "returned"]),
    ]
    outcome = validate_frame(df, expectations, "orders")
    assert not outcome.success
    assert [r["expectation"] for r in outcome.results] == [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
    ]
    passed, failed = outcome.results
    assert passed["success"] is True and passed["unexpected_count"] == 0
    assert failed["success"] is False
    assert failed["kwargs"] == {"column": "status", "value_set": ["completed", "returned"]}
    assert failed["unexpected_percent"] == pytest.approx(50.0)
    assert failed["sample_rows"] == [
        {"order_id": "o2", "client_id": "c2", "status": "lost"},
        {"order_id": "o4", "client_id": "c4", "status": "lost"},
    ]
    [failure] = outcome.failures
    assert failure["sample_rows"] == failed["sample_rows"]
    assert outcome.gx_result is not None and outcome.gx_result["success"] is False


def test_raw_check_samples_carry_the_primary_key(raw_db: Path) -> None:
    con = duckdb.connect(str(raw_db))
    con.execute(
        "insert into raw_erp.orders (order_id, client_id, order_date, status, updated_at) values "
        "('o7', 'c1', '2026-09-05', 'shipped', '2026-09-05')"
    )
    con.execute(
        "insert into raw_erp.order_lines (order_id, line_no, quantity, unit_price) values "
        "('o404', 3, 1, 1.0)"
    )
    con.close()
    allowed = _outcomes(raw_db, "orders")["allowed_values"]
    assert allowed.failures[0]["sample_rows"] == [{"order_id": "o7", "status": "shipped"}]
    refs = _outcomes(raw_db, "order_lines")["references_exist"]
    [row] = refs.failures[0]["sample_rows"]
    assert row["order_id"] == "o404" and row["line_no"] == 3 and row["order_id__ref"] is None


def test_frame_check_needs_expectations_or_derive() -> None:
    with pytest.raises(ValueError, match="expectations or derive"):
        checks.FrameCheck(("marts", "x"), "n", "d", "marts.x", ("a",))


def test_id_columns_must_exist_for_a_check_to_apply() -> None:
    [in_sets] = [
        c for c in MART_CHECKS if c.relation == "marts.fct_orders" and c.name == "values_in_sets"
    ]
    assert in_sets.id_columns == ("order_id",)
    assert applicable_checks([in_sets], {"marts.fct_orders": ["order_id", "status"]})
    assert not applicable_checks([in_sets], {"marts.fct_orders": ["status"]})


def test_revenue_band_check_is_a_mart_check_on_fct_orders() -> None:
    [band] = [c for c in MART_CHECKS if c.name == mart_checks.REVENUE_BAND_CHECK]
    assert band.relation == "marts.fct_orders"
    assert set(band.columns) == {"order_date", "net_revenue"}
    sql = band.sql(
        CheckContext(as_of=date(2026, 9, 30), today=date(2026, 9, 30), revenue_band_days=14)
    )
    assert "date '2026-09-16'" in sql and "date '2026-09-30'" in sql


# --------------------------------------------------------------------------- plausible amounts

FCT_MONEY = ("gross_revenue", "discount_amount", "net_revenue", "cost_known", "margin")


def test_every_numeric_mart_column_is_bounded() -> None:
    """The check covers every floating/decimal column the marts' dbt YAML declares."""
    numeric = mart_checks.mart_numeric_columns()
    assert numeric["fct_orders"] == FCT_MONEY
    assert {"net_revenue_365d", "revenue_share", "cumulative_share"} <= set(numeric["client_abc"])
    assert not any(m.startswith(("stg_", "int_")) for m in numeric)  # marts only
    bounded = {c.asset[1]: c for c in MART_CHECKS if c.name == mart_checks.PLAUSIBLE_AMOUNTS_CHECK}
    assert set(bounded) == set(numeric)
    assert all(bounded[m].columns == cols for m, cols in numeric.items())
    assert bounded["fct_orders"].id_columns == ("order_id",)


def _fct_orders(path: Path, rows: str) -> None:
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists marts")
    con.execute(
        f"create or replace table marts.fct_orders as select * from (values {rows}) "
        f"t(order_id, {', '.join(FCT_MONEY)})"
    )
    con.close()


def _amounts_outcome(path: Path, ctx: CheckContext = CTX):
    [check] = [
        c
        for c in MART_CHECKS
        if c.relation == "marts.fct_orders" and c.name == mart_checks.PLAUSIBLE_AMOUNTS_CHECK
    ]
    [(_, outcome)] = run_checks(path, [check], ctx)
    return outcome


def test_mart_amounts_must_be_finite_and_plausible(tmp_path: Path) -> None:
    path = tmp_path / "work.duckdb"
    d = "::double"
    _fct_orders(
        path,
        f"('o1', 100.0{d}, 0.0{d}, 100.0{d}, null{d}, 100.0{d}), "
        f"('o2', -5e11{d}, 1.5{d}, -999999999999.0{d}, 1{d}, 3{d})",
    )
    assert _amounts_outcome(path).success
    _fct_orders(
        path,
        f"('o1', 100.0{d}, 0.0{d}, 100.0{d}, null{d}, 100.0{d}), "
        f"('o2', 'inf'{d}, 0.0{d}, 'inf'{d}, 1{d}, 'inf'{d}), "
        f"('o3', 'nan'{d}, 0.0{d}, 1{d}, 1{d}, 'nan'{d}), "
        f"('o4', 1e12{d}, 0{d}, -2.6e301{d}, 1{d}, 1{d})",
    )
    outcome = _amounts_outcome(path)
    assert not outcome.success
    failed = {f["column"]: f for f in outcome.failures}
    assert set(failed) == {"gross_revenue", "net_revenue", "margin"}
    assert failed["gross_revenue"]["unexpected_count"] == 3  # inf, nan and exactly the bound
    assert sorted(failed["net_revenue"]["sample"]) == ["-2.6e+301", "inf"]
    assert "nan" in failed["margin"]["sample"]
    # the setting moves the bound
    _fct_orders(path, f"('o1', 100.0{d}, 0.0{d}, 100.0{d}, null{d}, 100.0{d})")
    tight = CheckContext(as_of=CTX.as_of, today=CTX.today, max_line_amount=50.0)
    assert not _amounts_outcome(path, tight).success


@pytest.mark.parametrize("bad", ["'nan'::double", "'inf'::double"])
def test_revenue_shares_sum_fails_on_a_non_finite_share(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "work.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.client_abc as select * from (values "
        f"('c1', {bad}, true), ('c2', 0.0::double, true)) t(client_id, revenue_share, is_ranked)"
    )
    con.close()
    [check] = [c for c in MART_CHECKS if c.name == "revenue_shares_sum_to_one"]
    [(_, outcome)] = run_checks(path, [check], CTX)
    assert not outcome.success, outcome.summary()


# --------------------------------------------------------------------------- bounded memory


def _orders_table(path: Path, rows: int, bad_status_at: tuple[int, ...] = ()) -> None:
    """``rows`` orders o0..o<rows-1>, all 'completed' but those at ``bad_status_at``."""
    bad = ", ".join(str(i) for i in bad_status_at) or "-1"
    con = duckdb.connect(str(path))
    con.execute(
        "create or replace table orders as select 'o' || range as order_id, "
        f"case when range in ({bad}) then 'lost' else 'completed' end as status "
        f"from range({rows})"
    )
    con.close()


def _orders_check() -> checks.FrameCheck:
    return checks.FrameCheck(
        ("erp", "orders"),
        "orders_ok",
        "orders are valid",
        "orders",
        ("order_id", "status"),
        lambda _ctx: _orders_expectations(),
    )


def test_chunked_check_finds_bad_rows_in_every_chunk(tmp_path: Path) -> None:
    path = tmp_path / "work.duckdb"
    # GX sees only the rows DuckDB finds suspect (o3, the last row, the null key), here
    # two at a time: the first and the last suspect rows land in different chunks
    rows, chunk = 10_000, 2
    # bad statuses in the first and the last rows; a duplicate key far apart
    _orders_table(path, rows, bad_status_at=(3, rows - 1))
    con = duckdb.connect(str(path))
    con.execute("insert into orders values ('o5', 'completed'), (null, 'returned')")
    con.close()
    [(_, outcome)] = run_checks(path, [_orders_check()], CTX, chunk_rows=chunk)
    assert outcome.gx_result is not None and outcome.gx_result["meta"]["chunks"] > 1
    assert outcome.rows == rows + 2
    assert not outcome.success
    by_type = {f["expectation"]: f for f in outcome.failures}
    in_set = by_type["expect_column_values_to_be_in_set"]
    assert in_set["unexpected_count"] == 2  # summed over chunks
    assert in_set["sample"] == ["lost", "lost"]
    assert {r["order_id"] for r in in_set["sample_rows"]} == {"o3", f"o{rows - 1}"}
    assert in_set["unexpected_percent"] == pytest.approx(2 / (rows + 2) * 100)
    assert by_type["expect_column_values_to_not_be_null"]["unexpected_count"] == 1
    unique = by_type["expect_column_values_to_be_unique"]
    assert unique["unexpected_count"] == 2 and unique["sample"] == ["o5", "o5"]
    assert [r["expectation"] for r in outcome.results] == [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_in_set",
    ]
    # the same data validated whole gives the same counts
    con = duckdb.connect(str(path), read_only=True)
    whole = validate_frame(con.execute("select * from orders").df(), _orders_expectations(), "o")
    con.close()
    whole_counts = {f["expectation"]: f["unexpected_count"] for f in whole.failures}
    assert whole_counts == {k: f["unexpected_count"] for k, f in by_type.items()}
    assert outcome.results[0]["element_count"] == whole.results[0]["element_count"]


def test_chunked_check_on_empty_relation_passes_and_missing_column_fails(tmp_path: Path) -> None:
    path = tmp_path / "work.duckdb"
    _orders_table(path, 0)
    [(_, empty)] = run_checks(path, [_orders_check()], CTX, chunk_rows=100)
    assert empty.success, empty.summary()
    assert empty.rows == 0 and empty.evaluated == 3
    con = duckdb.connect(str(path))
    con.execute("alter table orders drop column status")
    con.close()
    [(_, broken)] = run_checks(path, [_orders_check()], CTX, chunk_rows=100)
    assert broken.success is False and broken.error


def test_gx_exception_in_a_chunk_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "work.duckdb"
    # every status is bad, so all 5000 rows are suspect and GX sees them 2048 at a time
    _orders_table(path, 5000, bad_status_at=tuple(range(5000)))
    real = engine.validate_frame
    calls: list[int] = []

    def broken_context():
        raise RuntimeError("GX exploded")

    def second_chunk_explodes(df, expectations, name):
        calls.append(len(df))
        if len(calls) == 2:
            monkeypatch.setattr(engine, "_context", broken_context)
        return real(df, expectations, name)

    monkeypatch.setattr(engine, "validate_frame", second_chunk_explodes)
    [(_, outcome)] = run_checks(path, [_orders_check()], CTX, chunk_rows=2048)
    assert len(calls) == 2  # the first chunk passed, the second raised: stopped there
    assert outcome.success is False
    assert "GX exploded" in (outcome.error or "")


_PEAK_CHILD = """
import json, sys
from datetime import date
import great_expectations as gx
import pandas as pd
from pipelines.quality import checks, engine, runner

E = gx.expectations

def expectations(_ctx=None):
    return [
        E.ExpectColumnValuesToNotBeNull(column="order_id"),
        E.ExpectColumnValuesToBeUnique(column="order_id"),
        E.ExpectColumnValuesToBeInSet(column="status", value_set=["completed", "returned"]),
    ]

def hwm_kb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM"))

check = checks.FrameCheck(
    ("erp", "orders"), "orders_ok", "d", "orders", ("order_id", "status"), expectations
)
ctx = checks.CheckContext(as_of=date(2026, 9, 30), today=date(2026, 10, 1))
engine.validate_frame(
    pd.DataFrame({"order_id": ["o"], "status": ["completed"]}), expectations(), "warm-up"
)
before = hwm_kb()
[(_, o)] = runner.run_checks(
    sys.argv[1], [check], ctx, chunk_rows=int(sys.argv[2]), memory_limit="64MB"
)
print(json.dumps({"growth_kb": hwm_kb() - before, "rows": o.rows,
                  "unexpected": {f["expectation"]: f["unexpected_count"] for f in o.failures}}))
"""


def _peak_growth_kb(path: Path, chunk_rows: int) -> dict:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _PEAK_CHILD, str(path), str(chunk_rows)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_peak_memory_does_not_grow_with_rows(tmp_path: Path) -> None:
    small, big = tmp_path / "small.duckdb", tmp_path / "big.duckdb"
    _orders_table(small, 300_000, bad_status_at=(299_999,))
    _orders_table(big, 3_000_000, bad_status_at=(2_999_999,))
    small_run = _peak_growth_kb(small, 100_000)
    big_run = _peak_growth_kb(big, 100_000)
    assert big_run["rows"] == 3_000_000
    # the bad row in the last chunk is found
    assert big_run["unexpected"] == {"expect_column_values_to_be_in_set": 1}
    # 10x the rows: reading them whole grew the peak by ~900 MB; chunked with DuckDB
    # capped at 64 MB, by about DuckDB's cache only (measured ~+30-50 MB)
    assert big_run["growth_kb"] - small_run["growth_kb"] < 100_000, (small_run, big_run)


def test_compound_key_duplicates_found_by_sql(raw_db: Path) -> None:
    con = duckdb.connect(str(raw_db))
    con.execute(
        "insert into raw_erp.order_lines (order_id, line_no, quantity, unit_price) values "
        "('o1', 1, 5, 1.0), ('o2', 2, 1, 1.0)"
    )
    con.close()
    keys = _outcomes(raw_db, "order_lines")["keys_unique_not_null"]
    assert not keys.success
    [failure] = keys.failures
    assert failure["expectation"] == "expect_compound_columns_to_be_unique"
    assert failure["unexpected_count"] == 2  # both rows of ('o1', 1); ('o2', 2) is unique
    assert keys.rows == 4
