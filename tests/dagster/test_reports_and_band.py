"""End to end: a revenue spike on the as-of day blocks publishing, and the run's HTML
validation report names the failing check and expectation."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from dagster_support import step_failures

pytestmark = pytest.mark.slow

AS_OF = "2026-09-30"
BAND_CHECK = "day_revenue_within_band"
FCT_ORDERS = dg.AssetKey(["marts", "fct_orders"])


def _check_evaluations(result) -> dict[tuple[dg.AssetKey, str], object]:
    return {
        (e.event_specific_data.asset_key, e.event_specific_data.check_name): e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def _plant_spike(src: Path, dst: Path, factor: float = 50.0) -> int:
    """Copy the ERP sqlite, multiplying the prices of the as-of day's order lines."""
    shutil.copyfile(src, dst)
    con = sqlite3.connect(dst)
    cur = con.execute(
        "update order_lines set unit_price = unit_price * ? where order_id in "
        "(select order_id from orders where date(order_date) = ?)",
        [factor, AS_OF],
    )
    changed = cur.rowcount
    con.commit()
    con.close()
    return changed


def test_revenue_spike_blocks_publish_and_report_names_it(
    kam_defs, demo_sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    warehouse = tmp_path / "warehouse" / "kam.duckdb"
    spiked = tmp_path / "erp_spiked.sqlite"
    assert _plant_spike(demo_sources / "erp.sqlite", spiked) > 0
    monkeypatch.setenv("KAM_DATA_DIR", str(data_dir))
    monkeypatch.setenv("KAM_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{spiked}")
    monkeypatch.setenv("KAM_CRM_URL", f"sqlite:///{demo_sources / 'crm.sqlite'}")

    job = kam_defs.resolve_job_def("kam_daily")
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(partition_key=AS_OF, instance=instance, raise_on_error=False)
    assert not result.success
    checks = _check_evaluations(result)
    band = checks[(FCT_ORDERS, BAND_CHECK)]
    assert band.passed is False
    failed = sorted(name for (_, name), c in checks.items() if not c.passed)
    assert failed == [BAND_CHECK], failed  # only the planted spike trips a check
    meta = band.metadata
    assert meta["revenue_band_value"].value > meta["revenue_band_high"].value
    assert meta["revenue_band_history_days"].value >= 4
    # blocked: the warehouse was never built
    assert not result.asset_materializations_for_node("warehouse")
    assert not warehouse.exists()

    # the report linked from the check's metadata names the check and expectation
    page = Path(meta["report"].value)
    assert page.is_file()
    assert page.is_relative_to(data_dir / "reports" / result.run_id)
    # no file:// link (a browser refuses it from the UI's http page): the check's Markdown
    # carries the report's content instead
    assert not any("file://" in str(value.value) for value in meta.values())
    assert BAND_CHECK in meta["result"].value and "FAILED" in meta["result"].value
    assert "expect_column_values_to_be_between" in meta["result"].value
    text = page.read_text()
    assert BAND_CHECK in text and "FAILED" in text
    assert "expect_column_values_to_be_between" in text
    assert "day_net_revenue" in text
    record = json.loads(Path(meta["report_json"].value).read_text())
    assert record["status"] == "failed"
    assert record["notes"]["revenue_band"]["within"] is False
    index = Path(meta["report_index"].value)
    assert index == data_dir / "reports" / result.run_id / "index.html"
    index_text = index.read_text()
    assert "Raw layer checks" in index_text and "Mart checks" in index_text
    assert f"marts.fct_orders:{BAND_CHECK}" in index_text
    # the step log prints where the report is
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(str(index) in message for message in logs)

    # a publish materialized alone re-validates, refuses, and reports it in its own run
    lone = job.execute_in_process(
        partition_key=AS_OF,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        asset_selection=[dg.AssetKey(["warehouse"])],
    )
    assert not lone.success
    failures = step_failures(lone)
    assert set(failures) == {"warehouse"}
    assert BAND_CHECK in failures["warehouse"]
    lone_index = data_dir / "reports" / lone.run_id / "index.html"
    assert str(lone_index) in failures["warehouse"]
    assert "Re-validation by the publish step" in lone_index.read_text()
    assert not warehouse.exists()
