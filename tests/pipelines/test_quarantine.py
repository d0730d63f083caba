"""Quarantine: propagation, conservation, audit tables, valid views, gates, source counts."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import row_rule_cases as rr
import source_fixtures as fx

from pipelines.contract import TABLES, tables_of
from pipelines.extract.connect import open_source
from pipelines.extract.raw_loader import ensure_source_counts, extract_all, record_source_counts
from pipelines.gate.batch_gates import evaluate_gates
from pipelines.gate.quarantine import ALL_RULES, apply_quarantine


def _rows(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def _quarantined(con) -> dict[tuple[str, str, str], str]:
    rows = _rows(con, "select system, source_table, record_key, rule from audit.quarantine")
    return {(s, t, k): rule for s, t, k, rule in rows}


def _assert_conservation(con) -> None:
    for table in TABLES:
        raw = _rows(con, f"select count(*) from raw_{table.system}.{table.name}")[0][0]
        valid = _rows(con, f"select count(*) from valid_{table.system}.{table.name}")[0][0]
        rejected = _rows(
            con,
            "select count(*) from raw_meta.rejected_rows where system = ? and table_name = ?",
            [table.system, table.name],
        )[0][0]
        quarantined = _rows(
            con,
            "select count(*) from audit.quarantine where system = ? and source_table = ?",
            [table.system, table.name],
        )[0][0]
        assert raw + rejected == valid + quarantined, (table.name, raw, rejected, valid)


def test_bad_client_takes_its_facts_with_it() -> None:
    con = rr.good_db()
    con.execute("update raw_erp.clients set segment = null where client_id = 'C1'")
    apply_quarantine(con, "r1", rr.AS_OF, today=rr.TODAY)
    found = _quarantined(con)
    assert found == {
        ("erp", "clients", "client_id=C1"): "required_null",
        ("erp", "orders", "order_id=O1"): "parent_quarantined",
        ("erp", "order_lines", "order_id=O1|line_no=1"): "parent_quarantined",
        ("erp", "order_lines", "order_id=O1|line_no=2"): "parent_quarantined",
        ("erp", "invoices", "invoice_id=I1"): "parent_quarantined",
        ("crm", "contacts", "contact_id=K1"): "parent_quarantined",
        ("crm", "interactions", "interaction_id=X1"): "parent_quarantined",
    }
    _assert_conservation(con)
    assert _rows(con, "select client_id from valid_erp.clients") == [("C2",)]
    assert _rows(con, "select order_id, line_no from valid_erp.order_lines") == [("O2", 1)]


def test_bad_line_quarantines_its_whole_order() -> None:
    con = rr.good_db()
    con.execute(
        "update raw_erp.order_lines set unit_price = -3 where order_id = 'O1' and line_no = 2"
    )
    apply_quarantine(con, "r1", rr.AS_OF, today=rr.TODAY)
    assert _quarantined(con) == {
        ("erp", "order_lines", "order_id=O1|line_no=2"): "negative_on_completed_order",
        ("erp", "orders", "order_id=O1"): "child_quarantined",
        ("erp", "order_lines", "order_id=O1|line_no=1"): "parent_quarantined",
    }
    _assert_conservation(con)
    # invoices reference orders only loosely (not a contract foreign key): I1 stays.
    assert _rows(con, "select invoice_id from valid_erp.invoices") == [("I1",)]


def test_audit_row_holds_the_row_its_rules_and_description() -> None:
    con = rr.good_db()
    # breaks two rules: unknown client first (contract order), then the 1990 floor
    con.execute(rr.order_row("'CX' as client_id, date '1985-05-05' as order_date"))
    apply_quarantine(con, "run-42", rr.AS_OF, today=rr.TODAY)
    rows = _rows(
        con,
        "select run_id, quarantined_at is not null, rule, rule_description, other_rules, row_json "
        "from audit.quarantine where record_key = 'order_id=O9'",
    )
    assert len(rows) == 1
    run_id, stamped, rule, description, other, row_json = rows[0]
    assert (run_id, stamped, rule, other) == ("run-42", True, "unknown_client", "date_before_1990")
    assert "erp.clients" in description
    row = json.loads(row_json)
    assert row["order_id"] == "O9" and row["client_id"] == "CX"
    assert row["order_date"] == "1985-05-05" and row["status"] == "completed"
    assert set(row) == {c.name for c in tables_of("erp")[2].columns}


def test_unreadable_rows_are_quarantined_with_their_dependants(tmp_path: Path) -> None:
    """Rows the loader could not read (raw_meta.rejected_rows) are quarantined as
    unreadable_value; the rows that reference them and the order of an unreadable line
    follow, by propagation (not as 'unknown_client')."""
    data = fx.base_data()
    data["erp"]["order_lines"][0]["unit_price"] = "12,50"  # O1 line 1: decimal comma
    data["erp"]["clients"][1]["payment_terms_days"] = "sixty"  # C2
    db = tmp_path / "work.duckdb"
    urls = [fx.make_source_url("sqlite", tmp_path, s, data[s]) for s in ("erp", "crm")]
    extract_all(db, *urls, "r1", 100)
    con = duckdb.connect(str(db))
    summary = apply_quarantine(con, "r1", date(2026, 6, 1), today=datetime.now().date())
    found = _quarantined(con)
    expected = {
        ("erp", "order_lines", "order_id=O1|line_no=1"): "unreadable_value",
        ("erp", "orders", "order_id=O1"): "child_quarantined",
        ("erp", "order_lines", "order_id=O1|line_no=2"): "parent_quarantined",
        ("erp", "clients", "client_id=C2"): "unreadable_value",
        ("erp", "orders", "order_id=O2"): "parent_quarantined",
        ("erp", "order_lines", "order_id=O2|line_no=1"): "parent_quarantined",
        ("erp", "invoices", "invoice_id=I2"): "parent_quarantined",
        ("crm", "contacts", "contact_id=K2"): "parent_quarantined",
        ("crm", "interactions", "interaction_id=X2"): "parent_quarantined",
    }
    assert {k: found.get(k) for k in expected} == expected
    assert "client_id=C1" not in {k for (_, t, k) in found if t == "clients"}
    description, other, row_json = _rows(
        con,
        "select rule_description, other_rules, row_json from audit.quarantine "
        "where record_key = 'client_id=C2'",
    )[0]
    assert description == "a value cannot be read as its contract type: payment_terms_days"
    assert other is None
    row = json.loads(row_json)
    assert row["payment_terms_days"] == "sixty" and row["client_name"] == "Bolt"
    # the table's row count, base of the gate's share, counts the rejected row
    assert summary.total("erp", "clients").table_rows == 3
    by_rule = {(c.table, c.rule): c.quarantined_rows for c in summary.by_rule()}
    assert by_rule[("clients", "unreadable_value")] == 1
    assert by_rule[("order_lines", "unreadable_value")] == 1
    _assert_conservation(con)
    assert _rows(con, "select count(*) from valid_erp.order_lines where order_id = 'O1'") == [(0,)]
    con.close()


def test_conservation_with_many_bad_rows() -> None:
    con = rr.good_db()
    for _, _, _, plant, _ in rr.CASES:
        con.execute(plant)
    summary = apply_quarantine(con, "r1", rr.AS_OF, today=rr.TODAY)
    _assert_conservation(con)
    for table in TABLES:
        total = summary.total(table.system, table.name)
        quarantined = _rows(
            con,
            "select count(*) from audit.quarantine where system = ? and source_table = ?",
            [table.system, table.name],
        )[0][0]
        assert total.quarantined_rows == quarantined
        by_rule = sum(
            c.quarantined_rows for c in summary.by_rule() if (c.system, c.table) == total_key(total)
        )
        assert by_rule == quarantined


def total_key(count) -> tuple[str, str]:
    return (count.system, count.table)


def test_runs_are_appended_and_a_rerun_replaces_its_rows() -> None:
    con = rr.good_db()
    con.execute(rr.order_row("'lost' as status"))
    apply_quarantine(con, "r1", rr.AS_OF, today=rr.TODAY)
    apply_quarantine(con, "r2", rr.AS_OF, today=rr.TODAY)
    apply_quarantine(con, "r2", rr.AS_OF, today=rr.TODAY)
    rows = _rows(
        con,
        "select run_id, rule, quarantined_rows, table_rows, share, as_of_date "
        "from audit.quarantine_runs where source_table = 'orders' order by run_id, rule",
    )
    assert rows == [
        ("r1", ALL_RULES, 1, 3, pytest.approx(1 / 3), rr.AS_OF),
        ("r1", "value_not_allowed", 1, 3, pytest.approx(1 / 3), rr.AS_OF),
        ("r2", ALL_RULES, 1, 3, pytest.approx(1 / 3), rr.AS_OF),
        ("r2", "value_not_allowed", 1, 3, pytest.approx(1 / 3), rr.AS_OF),
    ]
    # every table has its total row, zero included
    assert _rows(
        con, "select count(*) from audit.quarantine_runs where run_id = 'r1' and rule = '*'"
    )[0][0] == len(TABLES)
    # audit.quarantine holds the last run only
    assert _rows(con, "select distinct run_id from audit.quarantine") == [("r2",)]


def test_fixed_row_leaves_the_quarantine() -> None:
    con = rr.good_db()
    con.execute(rr.order_row("'lost' as status"))
    apply_quarantine(con, "r1", rr.AS_OF, today=rr.TODAY)
    assert _rows(con, "select count(*) from valid_erp.orders")[0][0] == 2
    con.execute("update raw_erp.orders set status = 'completed' where order_id = 'O9'")
    apply_quarantine(con, "r2", rr.AS_OF, today=rr.TODAY)
    assert _quarantined(con) == {}
    assert _rows(con, "select count(*) from valid_erp.orders")[0][0] == 3


# --------------------------------------------------------------------------- gates


def _gates(con, run_id: str, max_share: float = 0.01, max_drop: float = 0.2) -> dict:
    results = evaluate_gates(
        con, run_id, quarantine_max_share=max_share, row_drop_max_share=max_drop
    )
    return {(r.system, r.table, r.gate): r for r in results}


def _count_sources(con, run_id: str, counts: dict[tuple[str, str], int]) -> None:
    ensure_source_counts(con)
    runs = con.execute("select count(distinct run_id) from raw_meta.source_counts").fetchall()
    at = datetime(2026, 1, 1) + timedelta(days=runs[0][0])  # one run a day
    for (system, table), n in counts.items():
        con.execute(
            "insert into raw_meta.source_counts values (?, ?, ?, ?, ?, null)",
            [run_id, system, table, n, at],
        )


def test_quarantine_share_gate_names_table_rule_and_keys() -> None:
    con = rr.good_db()
    con.execute(rr.order_row("'lost' as status"))
    apply_quarantine(con, "r1", rr.AS_OF, today=rr.TODAY)
    gates = _gates(con, "r1", max_share=0.5)
    assert gates[("erp", "orders", "quarantine_share")].passed  # 1 of 3 <= 50 %
    gates = _gates(con, "r1", max_share=0.01)
    failed = gates[("erp", "orders", "quarantine_share")]
    assert not failed.passed
    assert "erp.orders" in failed.message and "value_not_allowed" in failed.message
    assert "order_id=O9" in failed.message and "1 of 3" in failed.message
    assert failed.facts["by_rule"] == {"value_not_allowed": 1}
    assert gates[("erp", "clients", "quarantine_share")].passed


def test_quarantine_share_gate_fails_when_quarantine_was_not_applied() -> None:
    con = rr.good_db()
    apply_quarantine(con, "r1", rr.AS_OF, today=rr.TODAY)
    gates = _gates(con, "other-run")
    assert not gates[("erp", "orders", "quarantine_share")].passed


def test_not_empty_gate() -> None:
    con = rr.good_db()
    apply_quarantine(con, "r1", rr.AS_OF, today=rr.TODAY)
    _count_sources(con, "r1", {("erp", "orders"): 2})
    gates = _gates(con, "r1")
    assert all(gates[("erp", t, "not_empty")].passed for t in ("clients", "orders", "order_lines"))
    # the source's orders come back empty (the raw layer still holds the old ones)
    _count_sources(con, "r2", {("erp", "orders"): 0})
    apply_quarantine(con, "r2", rr.AS_OF, today=rr.TODAY)
    failed = _gates(con, "r2")[("erp", "orders", "not_empty")]
    assert not failed.passed and "the source returned no row" in failed.message
    # the raw layer is empty
    con.execute("delete from raw_erp.order_lines")
    apply_quarantine(con, "r3", rr.AS_OF, today=rr.TODAY)
    failed = _gates(con, "r3")[("erp", "order_lines", "not_empty")]
    assert not failed.passed and "erp.order_lines is empty" in failed.message


def test_row_count_gate_compares_with_the_last_accepted_run() -> None:
    con = rr.good_db()
    for run, n in (("r1", 200), ("r2", 170), ("r3", 100), ("r4", 100), ("r5", 130)):
        _count_sources(con, run, {("erp", "orders"): n})
        apply_quarantine(con, run, rr.AS_OF, today=rr.TODAY)
        gate = _gates(con, run)[("erp", "orders", "row_count_drop")]
        if run == "r1":
            assert gate.passed and "no earlier accepted count" in gate.message
        elif run == "r2":  # -15 %
            assert gate.passed
        else:  # 100, 100, 130 vs 170: blocked; re-running does not accept the drop
            assert not gate.passed, gate.message
            assert "fell by more than 20%" in gate.message
            assert f"170 -> {n} rows" in gate.message and "since run r2" in gate.message
    # a shrink acknowledged with a higher limit becomes the new reference
    assert _gates(con, "r5", max_drop=0.5)[("erp", "orders", "row_count_drop")].passed
    _count_sources(con, "r6", {("erp", "orders"): 120})
    apply_quarantine(con, "r6", rr.AS_OF, today=rr.TODAY)
    assert _gates(con, "r6")[("erp", "orders", "row_count_drop")].passed
    # tables not counted (a system not configured) are not judged
    assert _gates(con, "r6")[("crm", "contacts", "row_count_drop")].passed


# --------------------------------------------------------------------------- source counts


@pytest.mark.parametrize("kind", ["sqlite", "parquet", "csv"])
def test_count_rows(kind: str, tmp_path: Path) -> None:
    data = fx.base_data()
    for system in ("erp", "crm"):
        url = fx.make_source_url(kind, tmp_path, system, data[system])
        with open_source(system, url) as source:
            for table in tables_of(system):
                assert source.count_rows(table) == len(data[system].get(table.name, []))


def test_csv_count_rows_handles_quoted_line_breaks(tmp_path: Path) -> None:
    data = fx.base_data()
    data["erp"]["clients"][0]["client_name"] = 'Acme\nand sons, "the" best'
    url = fx.make_source_url("csv", tmp_path, "erp", data["erp"])
    with open_source("erp", url) as source:
        assert source.count_rows(tables_of("erp")[0]) == len(data["erp"]["clients"])


def test_extract_all_records_source_counts(tmp_path: Path) -> None:
    data = fx.base_data()
    erp = fx.write_sqlite(tmp_path / "erp.sqlite", "erp", data["erp"])
    db = tmp_path / "work.duckdb"
    loads = extract_all(db, erp, None, "run-1", chunk_rows=100)
    assert {load.table: load.source_rows for load in loads if load.system == "erp"} == {
        t.name: len(data["erp"].get(t.name, [])) for t in tables_of("erp")
    }
    assert all(load.source_rows is None for load in loads if load.system == "crm")
    con = duckdb.connect(str(db))
    rows = _rows(con, "select table_name, source_rows, accepted from raw_meta.source_counts")
    assert sorted(rows) == sorted(
        (t.name, len(data["erp"].get(t.name, [])), None) for t in tables_of("erp")
    )
    # recording again for the same run replaces, never duplicates
    with open_source("erp", erp) as source:
        record_source_counts(con, source, "run-1")
    assert _rows(con, "select count(*) from raw_meta.source_counts")[0][0] == len(tables_of("erp"))
    con.close()


def test_duplicate_keys_and_deletes_are_reported(tmp_path: Path) -> None:
    """Issue 9: an order sent twice is quarantined as duplicate_key, both copies with their
    values, its lines follow; an order deleted at the source leaves the valid views and is
    listed in audit.deleted_rows; the not_empty gate compares stored + kept aside rows
    with the source's rows."""
    data = fx.base_data()
    db = tmp_path / "work.duckdb"
    erp = data["erp"]
    erp["orders"].append(dict(erp["orders"][0], client_id="C2", status="cancelled"))  # O1 twice
    for day in ("d1", "d2"):
        (tmp_path / day).mkdir()
    urls = [fx.make_source_url("sqlite", tmp_path / "d1", s, data[s]) for s in ("erp", "crm")]
    extract_all(db, *urls, "r1", 100)
    con = duckdb.connect(str(db))
    apply_quarantine(con, "r1", date(2026, 6, 1), today=datetime.now().date())
    copies = _rows(
        con,
        "select rule, rule_description, row_json from audit.quarantine "
        "where record_key = 'order_id=O1' order by row_json",
    )
    assert [r for r, _, _ in copies] == ["duplicate_key", "duplicate_key"]
    assert sorted(json.loads(j)["client_id"] for *_, j in copies) == ["C1", "C2"]
    assert "order_id" in copies[0][1] and "more than once" in copies[0][1]
    assert (
        _quarantined(con)[("erp", "order_lines", "order_id=O1|line_no=1")] == "parent_quarantined"
    )
    assert _rows(con, "select count(*) from valid_erp.orders where order_id = 'O1'") == [(0,)]
    _assert_conservation(con)
    gate = _gates(con, "r1")[("erp", "orders", "not_empty")]
    assert gate.facts["raw_rows"] == 2 and gate.facts["kept_aside_rows"] == 2
    assert "4 rows in the raw layer (2 stored, 2 kept aside" in gate.message
    assert gate.message.endswith("4 in the source")
    con.close()
    # day 2: O1 once again (fixed), O2 deleted with its line
    erp["orders"] = [o for o in erp["orders"][:1] + erp["orders"][2:]]
    erp["orders"][0]["updated_at"] = datetime(2026, 2, 1, 9)
    erp["order_lines"] = [r for r in erp["order_lines"] if r["order_id"] != "O2"]
    urls = [fx.make_source_url("sqlite", tmp_path / "d2", s, data[s]) for s in ("erp", "crm")]
    extract_all(db, *urls, "r2", 100, max_delete_share=1.0)
    con = duckdb.connect(str(db))
    apply_quarantine(con, "r2", date(2026, 6, 1), today=datetime.now().date())
    assert _rows(con, "select order_id from valid_erp.orders order by 1") == [("O1",), ("O3",)]
    assert ("erp", "orders", "order_id=O1") not in _quarantined(con)
    assert _rows(con, "select table_name, record_key from audit.deleted_rows order by 1") == [
        ("order_lines", "order_id=O2|line_no=1"),
        ("orders", "order_id=O2"),
    ]
    _assert_conservation(con)
    con.close()
