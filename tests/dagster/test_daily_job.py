"""End to end: the daily job on a small demo, then on a source that breaks the contract."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_support import step_failures

pytestmark = pytest.mark.slow

AS_OF = "2026-09-30"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _count(con, sql: str) -> int:
    return con.execute(sql).fetchall()[0][0]


def _run(defs, selection=None):
    job = defs.resolve_job_def("kam_daily")
    return job.execute_in_process(
        partition_key=AS_OF,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        asset_selection=selection,
    )


def test_daily_job_end_to_end_then_contract_break(
    kam_defs, break_orders, demo_sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse" / "kam.duckdb"
    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KAM_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{demo_sources / 'erp.sqlite'}")
    monkeypatch.setenv("KAM_CRM_URL", f"sqlite:///{demo_sources / 'crm.sqlite'}")
    # the reports of a run 40 days ago: removed by the publish (KAM_REPORT_RETENTION_DAYS=30)
    old_report = tmp_path / "data" / "reports" / "an-old-run"
    old_report.mkdir(parents=True)
    (old_report / "index.html").write_text("old")
    forty_days_ago = time.time() - 40 * 86_400
    os.utime(old_report / "index.html", (forty_days_ago, forty_days_ago))

    result = _run(kam_defs)
    assert result.success, step_failures(result)
    assert not old_report.exists()
    assert (tmp_path / "data" / "reports" / result.run_id / "index.html").is_file()
    checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    gx_raw = [c for c in checks if c.asset_key == dg.AssetKey(["erp", "orders"])]
    assert {c.check_name for c in gx_raw} >= {"keys_unique_not_null", "references_exist"}
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    publish = result.asset_materializations_for_node("warehouse")
    assert len(publish) == 1
    assert publish[0].metadata["report_folders_removed"].value == 1
    assert publish[0].metadata["tables"].value["marts.dim_clients"] > 0
    # the mart checks passed earlier in this run on these very marts: verified by their
    # fingerprint, not run again
    assert publish[0].metadata["marts_verified_by_fingerprint"].value is True
    assert publish[0].metadata["checks_revalidated"].value == 0

    assert warehouse.exists()
    work_db = tmp_path / "data" / "work" / "kam_work.duckdb"
    src = sqlite3.connect(demo_sources / "erp.sqlite")
    src_clients = src.execute("select count(*) from clients").fetchone()[0]
    src_orders = src.execute(
        "select count(*) from orders where date(order_date) <= ?", [AS_OF]
    ).fetchone()[0]
    src.close()
    work = duckdb.connect(str(work_db), read_only=True)
    work_counts = {
        t: _count(work, f"select count(*) from marts.{t}") for t in ("dim_clients", "fct_orders")
    }
    work.close()
    wh = duckdb.connect(str(warehouse), read_only=True)
    wh_counts = {
        t: _count(wh, f"select count(*) from marts.{t}") for t in ("dim_clients", "fct_orders")
    }
    wh.close()
    assert wh_counts == work_counts
    assert wh_counts["dim_clients"] == src_clients == 120
    assert wh_counts["fct_orders"] == src_orders > 0

    # A source without orders.order_date: the run fails at the contract check, the
    # message names the column, and the published warehouse is left byte for byte.
    before = _sha256(warehouse)
    broken = tmp_path / "broken_erp.sqlite"
    break_orders(demo_sources / "erp.sqlite", broken)
    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{broken}")
    failed = _run(kam_defs)
    assert not failed.success
    failures = step_failures(failed)
    assert "extract_sources" in failures
    assert "order_date" in failures["extract_sources"]
    assert "orders" in failures["extract_sources"]
    assert not failed.asset_materializations_for_node("warehouse")
    assert _sha256(warehouse) == before

    # A publish materialized alone (no mart check in its run) re-checks the marts: a
    # duplicated client refuses it.
    work = duckdb.connect(str(work_db))
    work.execute("insert into marts.dim_clients select * from marts.dim_clients limit 1")
    work.close()
    lone = _run(kam_defs, selection=[dg.AssetKey(["warehouse"])])
    assert not lone.success
    failures = step_failures(lone)
    assert set(failures) == {"warehouse"}
    assert "dim_clients" in failures["warehouse"]
    assert "keys_unique_not_null" in failures["warehouse"]
    assert _sha256(warehouse) == before
