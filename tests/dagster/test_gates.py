"""End to end: quarantine and batch-level gates in the daily job (small demo).

One work DB and one warehouse across the steps: (i) a few bad rows, two of them with a
value that cannot be read as its type (text in a numeric SQLite column), are quarantined
and the run publishes without them; (ii) too many bad order lines, (iii) an orders table
that lost half its rows since the last run, (iv) an empty orders table and (v) too many
unreadable prices block the run, and the published warehouse stays byte for byte what
it was.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import duckdb
import pytest

pytestmark = pytest.mark.slow

AS_OF = "2026-09-30"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(defs) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("kam_daily")
    return job.execute_in_process(
        partition_key=AS_OF, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )


def _failed_checks(result) -> dict[tuple[str, str], str]:
    """(asset, check) -> summary of every failed check evaluation."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            if not ev.passed:
                summary = ev.metadata.get("summary")
                out[(ev.asset_key.to_user_string(), ev.check_name)] = getattr(summary, "value", "")
    return out


def _copy_db(src: Path, dst: Path, *statements: str) -> str:
    shutil.copyfile(src, dst)
    con = sqlite3.connect(dst)
    for sql in statements:
        con.execute(sql)
    con.commit()
    con.close()
    return f"sqlite:///{dst}"


def _one(con, sql: str, params=()):
    return con.execute(sql, list(params)).fetchall()


def _assert_blocked(result, warehouse: Path, before: str) -> dict[tuple[str, str], str]:
    assert not result.success
    assert not result.asset_materializations_for_node("warehouse")
    assert _sha256(warehouse) == before
    return _failed_checks(result)


def test_quarantine_and_gates_end_to_end(
    kam_defs, demo_sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse" / "kam.duckdb"
    data = tmp_path / "data"
    monkeypatch.setenv("KAM_DATA_DIR", str(data))
    monkeypatch.setenv("KAM_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("KAM_CRM_URL", f"sqlite:///{demo_sources / 'crm.sqlite'}")
    erp_src = demo_sources / "erp.sqlite"

    # Pick the victims: a line of a completed order (and that order's lines), an invoice.
    src = sqlite3.connect(erp_src)
    order_id, line_no = src.execute(
        "select l.order_id, l.line_no from order_lines l join orders o using (order_id) "
        "where o.status = 'completed' and date(o.order_date) <= ? "
        "and (select count(*) from order_lines x where x.order_id = l.order_id) > 1 "
        "order by l.order_id, l.line_no limit 1",
        [AS_OF],
    ).fetchone()
    siblings = [
        r[0]
        for r in src.execute(
            "select line_no from order_lines where order_id = ? and line_no <> ?",
            [order_id, line_no],
        )
    ]
    # a second order, of another client, whose line gets a price that is not a number
    order_2, line_2 = src.execute(
        "select l.order_id, l.line_no from order_lines l join orders o using (order_id) "
        "where o.status = 'completed' and date(o.order_date) <= ? and o.client_id <> "
        "(select client_id from orders where order_id = ?) "
        "and (select count(*) from order_lines x where x.order_id = l.order_id) > 1 "
        "order by l.order_id desc, l.line_no limit 1",
        [AS_OF, order_id],
    ).fetchone()
    siblings_2 = [
        r[0]
        for r in src.execute(
            "select line_no from order_lines where order_id = ? and line_no <> ?",
            [order_2, line_2],
        )
    ]
    invoice_id, invoice_2 = src.execute(
        "select min(invoice_id), max(invoice_id) from invoices"
    ).fetchone()
    completed_lines = src.execute(
        "select count(*) from order_lines l join orders o using (order_id) "
        "where o.status = 'completed'"
    ).fetchone()[0]
    total_lines = src.execute("select count(*) from order_lines").fetchone()[0]
    src.close()
    crm = sqlite3.connect(demo_sources / "crm.sqlite")
    interaction_id = crm.execute("select min(interaction_id) from interactions").fetchone()[0]
    contact_id = crm.execute(
        "select min(contact_id) from contacts where started_at is not null"
    ).fetchone()[0]
    crm.close()

    # (i) a few bad rows (< 1 %): quarantined, the run publishes without them.
    erp_bad = _copy_db(
        erp_src,
        tmp_path / "erp_bad.sqlite",
        f"update order_lines set quantity = -5 where order_id = '{order_id}' "
        f"and line_no = {line_no}",
        f"update invoices set due_date = date(issued_date, '-3 days') "
        f"where invoice_id = '{invoice_id}'",
        # unreadable values: text in numeric columns (SQLite stores it as given)
        f"update order_lines set unit_price = '12,50 EUR' where order_id = '{order_2}' "
        f"and line_no = {line_2}",
        f"update invoices set amount = 'n/a' where invoice_id = '{invoice_2}'",
    )
    crm_bad = _copy_db(
        demo_sources / "crm.sqlite",
        tmp_path / "crm_bad.sqlite",
        f"update interactions set satisfaction = 9 where interaction_id = '{interaction_id}'",
        f"update contacts set left_at = date(started_at, '-1 day') "
        f"where contact_id = '{contact_id}'",
    )
    monkeypatch.setenv("KAM_ERP_URL", erp_bad)
    monkeypatch.setenv("KAM_CRM_URL", crm_bad)
    result = _run(kam_defs)
    assert result.success, _failed_checks(result)
    expected = {
        ("erp", "order_lines", f"order_id={order_id}|line_no={line_no}"): (
            "negative_on_completed_order"
        ),
        ("erp", "orders", f"order_id={order_id}"): "child_quarantined",
        ("erp", "invoices", f"invoice_id={invoice_id}"): "due_before_issued",
        ("crm", "interactions", f"interaction_id={interaction_id}"): "satisfaction_out_of_range",
        ("crm", "contacts", f"contact_id={contact_id}"): "left_before_started",
    }
    expected |= {
        ("erp", "order_lines", f"order_id={order_id}|line_no={n}"): "parent_quarantined"
        for n in siblings
    }
    expected |= {
        ("erp", "order_lines", f"order_id={order_2}|line_no={line_2}"): "unreadable_value",
        ("erp", "orders", f"order_id={order_2}"): "child_quarantined",
        ("erp", "invoices", f"invoice_id={invoice_2}"): "unreadable_value",
    }
    expected |= {
        ("erp", "order_lines", f"order_id={order_2}|line_no={n}"): "parent_quarantined"
        for n in siblings_2
    }
    wh = duckdb.connect(str(warehouse), read_only=True)
    published = {
        (s, t, k): rule
        for s, t, k, rule in _one(
            wh, "select system, source_table, record_key, rule from audit.quarantine"
        )
    }
    assert published == expected
    for quarantined_order in (order_id, order_2):
        assert _one(
            wh, "select count(*) from marts.fct_orders where order_id = ?", [quarantined_order]
        ) == [(0,)]
    unreadable = _one(
        wh,
        "select rule_description, row_json from audit.quarantine "
        "where record_key = ? and rule = 'unreadable_value'",
        [f"order_id={order_2}|line_no={line_2}"],
    )
    assert unreadable[0][0] == "a value cannot be read as its contract type: unit_price"
    assert '"unit_price":"12,50 EUR"' in unreadable[0][1]
    runs = _one(
        wh,
        "select source_table, quarantined_rows from audit.quarantine_runs "
        "where rule = 'negative_on_completed_order'",
    )
    assert runs == [("order_lines", 1)]
    wh.close()
    # the extraction step logged and recorded the counts per rule
    lines = result.asset_materializations_for_node("extract_sources")
    meta = {m.asset_key.to_user_string(): m.metadata for m in lines}
    assert meta["erp/order_lines"]["quarantined_by_rule"].value == {
        "negative_on_completed_order": 1,
        "unreadable_value": 1,
        "parent_quarantined": len(siblings) + len(siblings_2),
    }
    assert meta["erp/order_lines"]["quarantined_rows"].value == 2 + len(siblings + siblings_2)
    assert meta["erp/order_lines"]["rows_rejected_unreadable"].value == 1
    assert meta["erp/order_lines"]["table_rows"].value == total_lines
    assert meta["erp/invoices"]["quarantined_by_rule"].value == {
        "due_before_issued": 1,
        "unreadable_value": 1,
    }
    before = _sha256(warehouse)

    # (ii) > 1 % bad order lines (a fresh work DB reads them all): blocked, names table/rule.
    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path / "data_many_bad"))
    share = 0.02
    erp_many = _copy_db(
        erp_src,
        tmp_path / "erp_many_bad.sqlite",
        f"update order_lines set unit_price = -1 where rowid % {round(1 / share)} = 0 "
        "and order_id in (select order_id from orders where status = 'completed')",
    )
    monkeypatch.setenv("KAM_ERP_URL", erp_many)
    monkeypatch.setenv("KAM_CRM_URL", f"sqlite:///{demo_sources / 'crm.sqlite'}")
    failed = _assert_blocked(_run(kam_defs), warehouse, before)
    summary = failed[("erp/order_lines", "quarantine_share")]
    assert "erp.order_lines" in summary and "rule negative_on_completed_order" in summary
    planted = round(completed_lines * share)
    assert (
        abs(int(summary.split("rule negative_on_completed_order: ")[1].split(" ")[0]) - planted)
        <= planted * 0.2
    )
    assert "order_id=" in summary  # sample keys
    assert total_lines > 0

    # (iii) the orders table lost half its rows since the last run (work DB of (i)).
    monkeypatch.setenv("KAM_DATA_DIR", str(data))
    erp_half = _copy_db(
        erp_src, tmp_path / "erp_half.sqlite", "delete from orders where rowid % 2 = 0"
    )
    monkeypatch.setenv("KAM_ERP_URL", erp_half)
    failed = _assert_blocked(_run(kam_defs), warehouse, before)
    message = failed[("erp/orders", "row_count_drop")]
    assert "erp.orders: source row count fell by more than 20%" in message
    assert set(failed) == {("erp/orders", "row_count_drop")}

    # (iv) an empty orders table (fresh work DB): blocked.
    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path / "data_empty"))
    erp_empty = _copy_db(erp_src, tmp_path / "erp_empty.sqlite", "delete from orders")
    monkeypatch.setenv("KAM_ERP_URL", erp_empty)
    failed = _assert_blocked(_run(kam_defs), warehouse, before)
    assert "erp.orders is empty where rows are expected" in failed[("erp/orders", "not_empty")]

    # (v) > 1 % of the order lines carry a price that is not a number (fresh work DB):
    # every one is quarantined as unreadable_value and the run is blocked.
    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path / "data_unreadable"))
    erp_text = _copy_db(
        erp_src,
        tmp_path / "erp_unreadable.sqlite",
        "update order_lines set unit_price = 'tbd' where rowid % 40 = 0",
    )
    planted = (
        sqlite3.connect(tmp_path / "erp_unreadable.sqlite")
        .execute("select count(*) from order_lines where unit_price = 'tbd'")
        .fetchone()[0]
    )
    monkeypatch.setenv("KAM_ERP_URL", erp_text)
    failed = _assert_blocked(_run(kam_defs), warehouse, before)
    summary = failed[("erp/order_lines", "quarantine_share")]
    assert f"rule unreadable_value: {planted} rows" in summary, summary
