"""The checks run in a child process (pipelines.quality.child): same verdicts as in-process,
the fingerprint taken there, and a failing child never a pass; a small work DB runs them in
this process, a large one in a child (run_stage_checks)."""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest
from mart_fixtures import write_small_marts

from pipelines.contract import get_table
from pipelines.extract.raw_schema import ensure_raw_schema
from pipelines.quality.checks import CheckContext, applicable_checks, check_name
from pipelines.quality.child import (
    CHILD_FROM_WORK_DB_MB,
    can_run_in_child,
    run_checks_in_child,
    run_stage_checks,
    work_db_mb,
)
from pipelines.quality.fingerprint import fingerprint_db
from pipelines.quality.mart_checks import MART_CHECKS
from pipelines.quality.raw_checks import raw_checks
from pipelines.quality.runner import run_checks

CTX = CheckContext(as_of=date(2026, 9, 30), today=date(2026, 10, 1))


def _failures(outcomes) -> dict[str, tuple[bool, list]]:
    return {
        check_name(c): (o.success, [(f["expectation"], f["unexpected_count"]) for f in o.failures])
        for c, o in outcomes
    }


@pytest.fixture
def mart_db(tmp_path: Path) -> Path:
    # a duplicated key (c2 twice) and an order after the as-of date: two checks must fail
    return write_small_marts(tmp_path / "work.duckdb", third_client_id="c2")


def _mart_checks():
    available = {
        "marts.client_abc": ["client_id", "revenue_share", "is_ranked", "abc_class"],
        "marts.fct_orders": ["order_id", "order_date", "status"],
    }
    return applicable_checks(MART_CHECKS, available)


def test_mart_checks_in_a_child_same_verdicts_and_fingerprint(mart_db: Path) -> None:
    checks = _mart_checks()
    assert can_run_in_child("marts", checks)
    relations = {c.relation for c in checks}
    child = run_checks_in_child(mart_db, "marts", checks, CTX, relations)
    here = run_checks(mart_db, checks, CTX)
    assert [c for c, _ in child.outcomes] == checks
    assert _failures(child.outcomes) == _failures(here)
    found = _failures(child.outcomes)
    assert not found["marts.client_abc:keys_unique_not_null"][0]
    assert not found["marts.fct_orders:no_order_after_as_of"][0]
    assert found["marts.fct_orders:keys_unique_not_null"][0]
    assert child.fingerprint == fingerprint_db(mart_db, relations)
    assert child.max_rss_mb > 0


def test_raw_checks_in_a_child(tmp_path: Path) -> None:
    path = tmp_path / "work.duckdb"
    con = duckdb.connect(str(path))
    ensure_raw_schema(con)
    con.execute(
        "insert into raw_erp.orders (order_id, client_id, order_date, status, updated_at) values "
        "('o1', 'c404', '2026-09-01', 'completed', '2026-09-01')"
    )
    con.close()
    # built anew on each call: the same declarations, new closures
    checks = raw_checks([get_table("erp", "orders")])
    assert can_run_in_child("raw", checks)
    child = run_checks_in_child(path, "raw", checks, CTX)
    assert child.fingerprint is None
    assert _failures(child.outcomes) == _failures(run_checks(path, checks, CTX))
    assert not _failures(child.outcomes)["erp.orders:references_exist"][0]


def test_a_check_not_declared_stays_in_process() -> None:
    [check] = [c for c in MART_CHECKS if c.name == "no_order_after_as_of"]
    assert can_run_in_child("marts", [check])
    assert not can_run_in_child("raw", [check])  # not a raw check
    assert not can_run_in_child("marts", [dataclasses.replace(check, description="other")])
    own_query = dataclasses.replace(check, query=lambda _ctx: "select 1 as order_date")
    assert not can_run_in_child("marts", [own_query])
    assert not can_run_in_child("elsewhere", [check])


def test_a_failing_child_fails_every_check(mart_db: Path) -> None:
    checks = _mart_checks()
    # a stage the child does not know: it exits with an error before any check
    child = run_checks_in_child(mart_db, "elsewhere", checks, CTX, {"marts.fct_orders"})
    assert len(child.outcomes) == len(checks)
    assert all(not o.success for _c, o in child.outcomes)
    assert all("the check process exited 1" in (o.error or "") for _c, o in child.outcomes)
    assert "elsewhere" in child.outcomes[0][1].error
    assert child.fingerprint is None and child.fingerprint_error


def _own_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_the_child_reports_its_own_peak_not_its_parents(mart_db: Path) -> None:
    # the parent's peak goes ~800 MB above anything the child needs for this tiny DB
    ballast = b"\x01" * (800 * 2**20)
    del ballast
    parent_peak = _own_peak_mb()
    child = run_checks_in_child(mart_db, "marts", _mart_checks(), CTX)
    assert all(o.success or o.failures for _c, o in child.outcomes)
    assert 0 < child.max_rss_mb < parent_peak - 400, (child.max_rss_mb, parent_peak)


def _no_child(*_args, **_kwargs):
    raise AssertionError("a child process was started")


def test_a_small_work_db_runs_its_checks_in_this_process(
    mart_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = _mart_checks()
    relations = {c.relation for c in checks}
    assert 0 < work_db_mb(mart_db) < CHILD_FROM_WORK_DB_MB
    monkeypatch.setattr(subprocess, "Popen", _no_child)
    here = run_stage_checks(mart_db, "marts", checks, CTX, relations)
    assert not here.in_child and "under" in here.why
    assert [c for c, _ in here.outcomes] == checks
    # real Great Expectations validations: the planted duplicate and late order fail
    found = _failures(here.outcomes)
    assert found == _failures(run_checks(mart_db, checks, CTX))
    assert not found["marts.client_abc:keys_unique_not_null"][0]
    assert not found["marts.fct_orders:no_order_after_as_of"][0]
    assert found["marts.fct_orders:keys_unique_not_null"][0]
    assert here.fingerprint == fingerprint_db(mart_db, relations)


def test_a_large_work_db_runs_its_checks_in_a_child(mart_db: Path) -> None:
    checks = _mart_checks()
    relations = {c.relation for c in checks}
    # the same DB judged large: the threshold just under its size
    child = run_stage_checks(
        mart_db, "marts", checks, CTX, relations, child_from_mb=work_db_mb(mart_db) * 0.99
    )
    assert child.in_child and child.max_rss_mb > 0
    assert _failures(child.outcomes) == _failures(run_checks(mart_db, checks, CTX))
    assert not _failures(child.outcomes)["marts.fct_orders:no_order_after_as_of"][0]
    assert child.fingerprint == fingerprint_db(mart_db, relations)


def test_a_large_work_db_keeps_undeclared_checks_in_this_process(
    mart_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [check] = [c for c in MART_CHECKS if c.name == "no_order_after_as_of"]
    own_query = dataclasses.replace(
        check, query=lambda _ctx: "select order_date from marts.fct_orders"
    )
    monkeypatch.setattr(subprocess, "Popen", _no_child)
    here = run_stage_checks(mart_db, "marts", [own_query], CTX, child_from_mb=0)
    assert not here.in_child and "not declared" in here.why
    [(_c, outcome)] = here.outcomes
    assert not outcome.success and outcome.failures  # o2 is dated after the as-of date


def test_the_work_db_size_counts_its_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "work.duckdb"
    assert work_db_mb(path) == 0  # no work DB yet
    path.write_bytes(b"\0" * 2**20)
    Path(f"{path}.wal").write_bytes(b"\0" * 2**19)
    assert work_db_mb(path) == 1.5
