"""Atomic DuckDB publish (pipelines/publish/duckdb_file.py): no Dagster involved."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.publish import duckdb_file as publish_module
from pipelines.publish.duckdb_file import file_storage_version, list_versions, publish_duckdb
from pipelines.publish.result import PublishError

AS_OF = date(2026, 9, 30)


def _make_work_db(path: Path, orders: int, marker: str) -> None:
    """Work DB with marts (2 tables + 1 view), audit (1 table) and a schema not published."""
    con = duckdb.connect(str(path))
    try:
        for schema in ("marts", "audit", "staging"):
            con.execute(f"create schema if not exists {schema}")
        con.execute(
            "create or replace table marts.fct_orders as "
            "select 'o' || i as order_id, i * 1.5 as net_revenue, date '2026-01-01' + i::int "
            "as order_date from range(?) t(i)",
            [orders],
        )
        con.execute(
            "create or replace table marts.dim_clients as select ? as marker, 42 as answer",
            [marker],
        )
        con.execute(
            "create or replace view marts.v_order_count as "
            "select count(*) as n from marts.fct_orders"
        )
        con.execute("create or replace table audit.quarantine as select 1 as id, 'x' as reason")
        con.execute("create or replace table staging.not_published as select 1 as id")
    finally:
        con.close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def work_db(tmp_path: Path) -> Path:
    path = tmp_path / "work" / "kam_work.duckdb"
    path.parent.mkdir()
    _make_work_db(path, orders=10, marker="first")
    return path


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "kam.duckdb"


def test_publish_twice_and_read_back(work_db: Path, warehouse: Path) -> None:
    first = publish_duckdb(work_db, warehouse, "run-one-0001", AS_OF)
    assert first.target == str(warehouse)
    assert first.tables == {
        "audit.quarantine": 1,
        "marts.dim_clients": 1,
        "marts.fct_orders": 10,
        "marts.v_order_count": 1,
    }
    assert _read(warehouse, "select marker from marts.dim_clients") == [("first",)]
    assert _read(warehouse, "select sum(net_revenue) from marts.fct_orders") == [(67.5,)]
    # the view was published as a table with its value at publish time
    assert _read(warehouse, "select n from marts.v_order_count") == [(10,)]
    tables = _read(
        warehouse, "select table_schema || '.' || table_name from information_schema.tables"
    )
    assert ("staging.not_published",) not in tables

    _make_work_db(work_db, orders=25, marker="second")
    second = publish_duckdb(work_db, warehouse, "run-two-0002", date(2026, 10, 1))
    assert second.tables["marts.fct_orders"] == 25
    assert second.version != first.version
    assert _read(warehouse, "select marker from marts.dim_clients") == [("second",)]
    assert _read(warehouse, "select count(*) from marts.fct_orders") == [(25,)]

    info = _read(
        warehouse, "select run_id, as_of_date::varchar, tables_json from marts.publish_info"
    )
    assert len(info) == 1
    run_id, as_of, tables_json = info[0]
    assert (run_id, as_of) == ("run-two-0002", "2026-10-01")
    assert json.loads(tables_json) == second.tables
    per_table = _read(
        warehouse, "select schema_name || '.' || table_name, row_count from marts.publish_tables"
    )
    assert dict(per_table) == second.tables

    versions = list_versions(warehouse)
    assert [v.name for v in versions] == [f"{first.version}.duckdb", f"{second.version}.duckdb"]
    assert versions[-1].name.endswith("__runtwo00.duckdb")
    assert os.path.samefile(versions[-1], warehouse)  # hard link of the published file
    assert _read(versions[0], "select marker from marts.dim_clients") == [("first",)]


def test_no_wal_and_no_temp_files_left(work_db: Path, warehouse: Path) -> None:
    publish_duckdb(work_db, warehouse, "run-1", AS_OF)
    publish_duckdb(work_db, warehouse, "run-2", AS_OF)
    assert sorted(p.name for p in warehouse.parent.iterdir()) == ["kam.duckdb", "versions"]
    assert not list(warehouse.parent.rglob("*.wal"))


def test_storage_version_is_the_older_one(work_db: Path, warehouse: Path, tmp_path: Path) -> None:
    result = publish_duckdb(work_db, warehouse, "run-1", AS_OF, storage_version="v1.0.0")
    assert result.storage_version == "v1.0.0+"
    assert file_storage_version(warehouse) == "v1.0.0+"
    assert _read(warehouse, "select storage_version from marts.publish_info") == [("v1.0.0+",)]
    # The header's storage format number: 64 is what DuckDB 1.0 .. 1.1 read.
    header = warehouse.read_bytes()[:20]
    assert header[8:12] == b"DUCK"
    assert struct.unpack("<Q", header[12:20])[0] == 64
    # A file written with the default storage of this DuckDB reports a newer version,
    # so the check above does discriminate.
    default_file = tmp_path / "default.duckdb"
    duckdb.connect(str(default_file)).close()
    assert file_storage_version(default_file) != "v1.0.0+"
    assert struct.unpack("<Q", default_file.read_bytes()[12:20])[0] != 64


def test_published_file_is_readable_read_only(work_db: Path, warehouse: Path) -> None:
    publish_duckdb(work_db, warehouse, "run-1", AS_OF)
    con1 = duckdb.connect(str(warehouse), read_only=True)
    con2 = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con1.execute("select count(*) from marts.fct_orders").fetchall() == [(10,)]
        assert con2.execute("select answer from marts.dim_clients").fetchall() == [(42,)]
    finally:
        con1.close()
        con2.close()


READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    def snapshot():
        rows = con.execute(
            "select (select count(*) from marts.fct_orders), "
            "(select marker from marts.dim_clients), (select run_id from marts.publish_info)"
        ).fetchall()
        return "|".join(str(v) for v in rows[0])
    print(snapshot(), flush=True)
    sys.stdin.readline()          # wait until the publisher is done
    print(snapshot(), flush=True)
    con.close()
    """
)


def test_reader_process_keeps_old_version_and_does_not_block(
    work_db: Path, warehouse: Path
) -> None:
    publish_duckdb(work_db, warehouse, "run-old", AS_OF)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "10|first|run-old"
        # The reader holds the published file open read-only while we publish.
        _make_work_db(work_db, orders=3, marker="new")
        started = time.perf_counter()
        result = publish_duckdb(work_db, warehouse, "run-new", AS_OF)
        assert time.perf_counter() - started < 30
        assert result.tables["marts.fct_orders"] == 3
        # A new connection sees the new version ...
        assert _read(
            warehouse,
            "select marker, (select run_id from marts.publish_info) from marts.dim_clients",
        ) == [("new", "run-new")]
        # ... while the reader still sees the old one, consistently.
        out, err = reader.communicate("go\n", timeout=30)
        assert reader.returncode == 0, err
        assert out.strip() == "10|first|run-old"
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()


@pytest.mark.parametrize("step", ["write_publish_info", "_verify_file", "_link_or_copy", "replace"])
def test_failure_leaves_published_file_untouched(
    work_db: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    publish_duckdb(work_db, warehouse, "run-good", AS_OF)
    before = _sha256(warehouse)
    versions_before = list_versions(warehouse)
    _make_work_db(work_db, orders=99, marker="broken")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"injected failure in {step}")

    if step == "replace":
        monkeypatch.setattr(publish_module.os, "replace", boom)
    else:
        monkeypatch.setattr(publish_module, step, boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        publish_duckdb(work_db, warehouse, "run-bad", AS_OF)
    monkeypatch.undo()

    assert _sha256(warehouse) == before
    assert sorted(p.name for p in warehouse.parent.iterdir()) == ["kam.duckdb", "versions"]
    assert list_versions(warehouse) == versions_before
    assert _read(warehouse, "select run_id from marts.publish_info") == [("run-good",)]
    # and the next publish works
    publish_duckdb(work_db, warehouse, "run-next", AS_OF)
    assert _read(warehouse, "select marker from marts.dim_clients") == [("broken",)]


def test_retention_removes_old_versions(work_db: Path, warehouse: Path) -> None:
    results = [publish_duckdb(work_db, warehouse, f"run-{i}", AS_OF, retention=2) for i in range(4)]
    kept = list_versions(warehouse)
    assert [p.name for p in kept] == [f"{r.version}.duckdb" for r in results[-2:]]
    assert results[-1].removed_versions == [f"{results[1].version}.duckdb"]
    assert os.path.samefile(kept[-1], warehouse)


def test_absent_schemas_skipped_and_empty_publish_refused(
    work_db: Path, warehouse: Path, tmp_path: Path
) -> None:
    result = publish_duckdb(work_db, warehouse, "run-1", AS_OF, schemas=("marts", "nope"))
    assert set(result.tables) == {"marts.dim_clients", "marts.fct_orders", "marts.v_order_count"}

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    before = _sha256(warehouse)
    with pytest.raises(PublishError, match="nothing to publish"):
        publish_duckdb(empty, warehouse, "run-2", AS_OF)
    assert _sha256(warehouse) == before
    assert sorted(p.name for p in warehouse.parent.iterdir()) == ["kam.duckdb", "versions"]


def test_bad_arguments_rejected(work_db: Path, warehouse: Path) -> None:
    with pytest.raises(ValueError):
        publish_duckdb(work_db, warehouse, "run-1", "30/09/2026")
    with pytest.raises(ValueError):
        publish_duckdb(work_db, warehouse, "run-1", AS_OF, retention=0)
    with pytest.raises(ValueError):
        publish_duckdb(work_db, warehouse, "run-1", AS_OF, schemas=("marts; drop",))
    assert not warehouse.exists()


def test_files_of_an_interrupted_publish_are_removed(work_db: Path, warehouse: Path) -> None:
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    abandoned = warehouse.parent / f".{warehouse.stem}.deadbeef.publishing"
    abandoned.write_bytes(b"half a file")
    abandoned_wal = warehouse.parent / f".{warehouse.stem}.deadbeef.publishing.wal"
    abandoned_wal.write_bytes(b"wal")
    publish_duckdb(work_db, warehouse, run_id="r1", as_of=AS_OF)
    assert not abandoned.exists() and not abandoned_wal.exists()
    assert _read(warehouse, "select run_id from marts.publish_info") == [("r1",)]


def test_publish_info_carries_the_churn_score_version(work_db: Path, warehouse: Path) -> None:
    """publish_info.score_version: the churn score's version from churn_model_report, the
    same on every report row; null when the report is not published."""
    publish_duckdb(work_db, warehouse, "run-1", AS_OF)
    assert _read(warehouse, "select score_version from marts.publish_info") == [(None,)]
    con = duckdb.connect(str(work_db))
    try:
        con.execute(
            "create table marts.churn_model_report as select c as candidate, "
            "'churn-score-11' as score_version from (values ('recency'), ('blend')) t(c)"
        )
    finally:
        con.close()
    publish_duckdb(work_db, warehouse, "run-2", AS_OF)
    assert _read(warehouse, "select score_version from marts.publish_info") == [("churn-score-11",)]
