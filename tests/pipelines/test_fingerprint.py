"""The checked marts' fingerprint: the publish step verifies instead of re-checking."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.quality import fingerprint

CHECKS = ["marts.dim_clients:keys_unique_not_null", "marts.fct_orders:values_in_sets"]
RELATIONS = ["marts.dim_clients", "marts.fct_orders"]


@pytest.fixture
def work_db(tmp_path: Path) -> Path:
    path = tmp_path / "work.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.dim_clients as select * from (values ('c1', 'KA'), ('c2', 'key')) "
        "t(client_id, declared_tier)"
    )
    con.execute(
        "create table marts.fct_orders as select 'o' || range as order_id, 'completed' as status "
        "from range(100)"
    )
    con.close()
    return path


def _record(work_db: Path, reports: Path, run_id: str = "run-1", passed: bool = True) -> None:
    tables = fingerprint.fingerprint_db(work_db, RELATIONS)
    fingerprint.write_record(reports, run_id, tables, {c: passed for c in CHECKS})


def _execute(work_db: Path, sql: str) -> None:
    con = duckdb.connect(str(work_db))
    con.execute(sql)
    con.close()


def test_unchanged_marts_of_passed_checks_are_verified(work_db: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _record(work_db, reports)
    assert (reports / "run-1" / fingerprint.RECORD_NAME).is_file()
    result = fingerprint.verify(work_db, reports, "run-1", CHECKS, RELATIONS)
    assert result.verified, result.reason
    assert result.tables["marts.fct_orders"]["rows"] == 100


@pytest.mark.parametrize(
    "change",
    [
        "insert into marts.dim_clients select * from marts.dim_clients limit 1",  # a duplicate
        "update marts.fct_orders set status = 'lost' where order_id = 'o7'",  # same row count
        "delete from marts.dim_clients where client_id = 'c2'",
    ],
)
def test_changed_marts_are_not_verified(work_db: Path, tmp_path: Path, change: str) -> None:
    reports = tmp_path / "reports"
    _record(work_db, reports)
    _execute(work_db, change)
    result = fingerprint.verify(work_db, reports, "run-1", CHECKS, RELATIONS)
    assert not result.verified
    assert "changed since checked" in result.reason


def test_no_record_of_this_run_or_a_failed_check_is_not_verified(
    work_db: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    alone = fingerprint.verify(work_db, reports, "run-1", CHECKS, RELATIONS)
    assert not alone.verified and "materialized alone" in alone.reason
    _record(work_db, reports, run_id="another-run")
    assert not fingerprint.verify(work_db, reports, "run-1", CHECKS, RELATIONS).verified
    _record(work_db, reports, passed=False)
    failed = fingerprint.verify(work_db, reports, "run-1", CHECKS, RELATIONS)
    assert not failed.verified and "not passed" in failed.reason
    # a check the publish step needs but this run did not evaluate
    _record(work_db, reports)
    more = [*CHECKS, "marts.fct_orders:no_order_after_as_of"]
    missing = fingerprint.verify(work_db, reports, "run-1", more, RELATIONS)
    assert not missing.verified and "no_order_after_as_of" in missing.reason
