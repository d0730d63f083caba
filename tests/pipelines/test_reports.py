"""Per-run validation reports: HTML pages, JSON copies and the run index (no Dagster)."""

from __future__ import annotations

import html
import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.quality import reports
from pipelines.quality.checks import CheckContext, FrameCheck
from pipelines.quality.mart_checks import MART_CHECKS
from pipelines.quality.runner import run_checks

CTX = CheckContext(as_of=date(2026, 9, 30), today=date(2026, 10, 1))


def _checks(*names: str) -> list[FrameCheck]:
    return [c for c in MART_CHECKS if c.relation == "marts.fct_orders" and c.name in names]


@pytest.fixture
def work_db(tmp_path: Path) -> Path:
    path = tmp_path / "work.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_orders as select * from (values "
        "('o1', date '2026-09-30', 'completed', 10.0),"
        "('o2', date '2026-09-29', 'lost', 5.0),"
        "('o2', date '2026-09-28', 'completed', 7.0),"
        "('o<script>', date '2026-09-27', '<b>bad</b>', 1.0)) "
        "t(order_id, order_date, status, net_revenue)"
    )
    con.close()
    return path


def test_reports_name_failing_expectations_and_rows(work_db: Path, tmp_path: Path) -> None:
    checks = _checks("keys_unique_not_null", "values_in_sets", "no_order_after_as_of")
    results = run_checks(work_db, checks, CTX)
    written = reports.write_reports(tmp_path / "reports", "run/42", "marts", results, CTX)

    folder = tmp_path / "reports" / "run_42"
    assert written.index == folder / "index.html"
    assert set(written.checks) == {
        "marts.fct_orders:keys_unique_not_null",
        "marts.fct_orders:values_in_sets",
        "marts.fct_orders:no_order_after_as_of",
    }
    status = {name: page.status for name, page in written.checks.items()}
    assert status["marts.fct_orders:keys_unique_not_null"] == "failed"
    assert status["marts.fct_orders:values_in_sets"] == "failed"
    assert status["marts.fct_orders:no_order_after_as_of"] == "passed"

    in_sets = written.checks["marts.fct_orders:values_in_sets"]
    assert in_sets.html.parent == folder / "marts"
    page = in_sets.html.read_text()
    assert "expect_column_values_to_be_in_set" in page
    assert "FAILED" in page
    # the failing rows carry the order id beside the bad status
    rows = re.findall(r"<tr class=\"bad\">.*?</tr>", page, flags=re.S)
    assert rows, page
    sample_section = page.split("sample failing rows", 1)[1]
    assert "o2" in sample_section and "lost" in sample_section
    # values are escaped, never interpreted
    assert "<b>bad</b>" not in page and html.escape("<b>bad</b>") in page
    assert "<script>" not in page.split("</style>", 1)[1]
    assert "http://" not in page and "https://" not in page

    record = json.loads(in_sets.json.read_text())
    assert record["status"] == "failed" and record["success"] is False
    assert record["as_of"] == "2026-09-30" and record["run_id"] == "run/42"
    [failure] = record["failures"]
    assert failure["unexpected_count"] == 2
    assert failure["unexpected_percent"] == pytest.approx(50.0)
    assert sorted(failure["sample"]) == ["<b>bad</b>", "lost"]
    assert {r["order_id"] for r in failure["sample_rows"]} == {"o2", "o<script>"}
    assert record["results"][0]["kwargs"]["value_set"] == ["completed", "cancelled", "returned"]
    assert record["gx_result"]["success"] is False
    assert "select" in record["sql"]

    index = written.index.read_text()
    for name in written.checks:
        assert html.escape(name) in index
    assert 'href="marts/marts.fct_orders__values_in_sets.html"' in index
    # failures are listed before passes
    assert index.index("keys_unique_not_null") < index.index("no_order_after_as_of")


def test_index_accumulates_stages_of_a_run(work_db: Path, tmp_path: Path) -> None:
    base = tmp_path / "reports"
    first = run_checks(work_db, _checks("no_order_after_as_of"), CTX)
    reports.write_reports(base, "run-1", "marts", first, CTX)
    second = run_checks(work_db, _checks("keys_unique_not_null"), CTX)
    written = reports.write_reports(base, "run-1", "publish", second, CTX)
    records = reports.load_records(base / "run-1")
    assert {(r["stage"], r["check"]) for r in records} == {
        ("marts", "marts.fct_orders:no_order_after_as_of"),
        ("publish", "marts.fct_orders:keys_unique_not_null"),
    }
    index = written.index.read_text()
    assert reports.STAGE_TITLES["marts"] in index
    assert reports.STAGE_TITLES["publish"] in index
    assert "2 checks" in index
    # another run has its own folder and index
    other = reports.write_reports(base, "run-2", "marts", first, CTX)
    assert other.index.parent.name == "run-2"
    assert len(reports.load_records(base / "run-2")) == 1


def test_skipped_and_error_outcomes_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_orders as select 'o1' as order_id, "
        "date '2026-09-30' as order_date, 'completed' as status, 3.0 as net_revenue"
    )
    con.close()
    band = _checks("day_revenue_within_band")
    assert band, "the revenue band check is declared on fct_orders"
    broken = FrameCheck(
        ("marts", "fct_orders"),
        "broken",
        "reads a missing column",
        "marts.fct_orders",
        ("nope",),
        lambda _ctx: [],
    )
    results = run_checks(path, [*band, broken], CTX)
    written = reports.write_reports(tmp_path / "r", "run-x", "marts", results, CTX)
    skipped = written.checks["marts.fct_orders:day_revenue_within_band"]
    assert skipped.status == "skipped"
    page = skipped.html.read_text()
    assert "not enough history" in page
    assert "<td>history_days</td><td>0</td>" in page
    error = written.checks["marts.fct_orders:broken"]
    assert error.status == "error"
    assert "nope" in error.html.read_text()
    index = written.index.read_text()
    assert "SKIPPED" in index and "ERROR" in index


def test_unsafe_names_are_refused_or_cleaned(tmp_path: Path) -> None:
    assert reports.safe_name("../../etc/passwd") == "etc_passwd"
    with pytest.raises(ValueError):
        reports.safe_name("///")
    assert reports.run_dir(tmp_path, "a/b").parent == tmp_path
    with pytest.raises(ValueError, match="stage"):
        reports.write_check_report(
            tmp_path, {"stage": "../x", "asset": ["a"], "name": "n", "check": "a:n"}
        )


def test_simple_records_of_other_gates_join_the_index(tmp_path: Path) -> None:
    folder = reports.run_dir(tmp_path, "run-g")
    record = reports.simple_record(
        asset=["erp", "orders"],
        name="row_count_drop",
        description="row count fell by at most 20 %",
        passed=False,
        summary="orders: 1000 -> 400 rows (-60 %)",
        stage="gates",
        run_id="run-g",
        as_of=date(2026, 9, 30),
        facts={"previous_rows": 1000, "rows": 400},
        sample_rows=[{"order_id": "o9"}],
    )
    page = reports.write_check_report(folder, record)
    index = reports.write_index(folder, "run-g").read_text()
    assert page.status == "failed"
    assert "erp.orders:row_count_drop" in index and "1000 -&gt; 400" in index
    text = page.html.read_text()
    assert "previous_rows" in text and "o9" in text


def _report_folder(root: Path, run_id: str, age_days: float, now: float) -> Path:
    folder = root / run_id
    (folder / "raw").mkdir(parents=True)
    files = [folder / "index.html", folder / "raw" / "erp_orders__keys.json"]
    for f in files:
        f.write_text("x")
        os.utime(f, (now - age_days * 86_400, now - age_days * 86_400))
    return folder


def test_prune_reports_removes_only_old_report_folders(tmp_path: Path) -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    t = now.timestamp()
    old = _report_folder(tmp_path, "run-old", 31, t)
    recent = _report_folder(tmp_path, "run-recent", 29, t)
    running = _report_folder(tmp_path, "run-now", 40, t)  # old files, but the current run
    # an old folder whose newest file is recent is kept (a re-run wrote to it)
    mixed = _report_folder(tmp_path, "run-mixed", 60, t)
    (mixed / "publish").mkdir()
    (mixed / "publish" / "late.json").write_text("{}")
    stranger = tmp_path / "notes"  # not a report folder: never touched
    stranger.mkdir()
    (stranger / "readme.txt").write_text("mine")
    os.utime(stranger / "readme.txt", (t - 400 * 86_400, t - 400 * 86_400))

    removed = reports.prune_reports(tmp_path, 30, keep_run_ids=["run-now"], now=now)
    assert removed == [old]
    assert not old.exists()
    assert recent.exists() and running.exists() and mixed.exists() and stranger.exists()
    assert reports.prune_reports(tmp_path, 0, now=now) == []  # 0 keeps everything
    with pytest.raises(ValueError, match="keep_days"):
        reports.prune_reports(tmp_path, -1)
