"""BI readers connected while a publish happens keep working.

* DuckDB: another PROCESS holds the warehouse file open read-only and queries it in a
  loop while a new version is published: no error, every answer is the old version and
  is consistent; a connection opened after the publish sees the new version.
* PostgreSQL: a session inside a long query on ``marts`` while a publish swaps the schema:
  the query completes, the publish completes, a new session sees the new version.

The publishes are the pipeline's publish functions applied to the reference run's work DB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from faults_support import (
    AS_OF_DATE,
    duckdb_marts,
    pg_connect,
    pg_marts,
    published_counts_consistent,
)

pytestmark = [pytest.mark.slow]

READER = r"""
import json, os, sys, time
import duckdb

path, stop = sys.argv[1], sys.argv[2]
con = duckdb.connect(path, read_only=True)
print(json.dumps({"ready": time.time()}), flush=True)
reads = 0
while not os.path.exists(stop):
    started = time.time()
    try:
        run_id = con.execute("select run_id from marts.publish_info").fetchall()[0][0]
        tables = con.execute(
            "select table_name, row_count from marts.publish_tables where schema_name = 'marts'"
        ).fetchall()
        counts = {
            name: con.execute(f'select count(*) from marts."{name}"').fetchall()[0][0]
            for name, _ in tables
        }
        revenue = con.execute("select sum(net_revenue) from marts.fct_orders").fetchall()[0][0]
        print(json.dumps({
            "start": started, "end": time.time(), "run_id": run_id,
            "expected": dict(tables), "counts": counts, "revenue": revenue,
        }), flush=True)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    reads += 1
    time.sleep(0.005)
con.close()
print(json.dumps({"done": reads}), flush=True)
"""


class ReaderProcess:
    def __init__(self, warehouse: Path, stop: Path) -> None:
        self.stop = stop
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER, str(warehouse), str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.records: list[dict] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._lock:
                self.records.append(json.loads(line))

    def results(self) -> list[dict]:
        with self._lock:
            return [r for r in self.records if "run_id" in r or "error" in r]

    def wait_until(self, condition, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"reader: condition not met; stderr: {self.proc.stderr.read()}")

    def finish(self) -> tuple[list[dict], str]:
        self.stop.touch()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._thread.join(timeout=10)
        return self.results(), self.proc.stderr.read()


def test_duckdb_reader_process_keeps_the_old_version_during_publish(
    reference, tmp_path: Path
) -> None:
    from pipelines.publish.duckdb_file import publish_duckdb

    warehouse = tmp_path / "warehouse" / "kam.duckdb"
    publish_duckdb(reference.work_db, warehouse, "bi-old", AS_OF_DATE)
    old = duckdb_marts(warehouse)

    reader = ReaderProcess(warehouse, tmp_path / "stop")
    try:
        reader.wait_until(lambda: len(reader.results()) >= 3)
        publish_started = time.time()
        result = publish_duckdb(reference.work_db, warehouse, "bi-new", AS_OF_DATE)
        publish_ended = time.time()
        reader.wait_until(
            lambda: sum(r.get("start", 0) > publish_ended for r in reader.results()) >= 3
        )
    finally:
        results, stderr = reader.finish()

    errors = [r["error"] for r in results if "error" in r]
    assert not errors, errors[:5]
    assert reader.proc.returncode == 0, stderr
    # the reader was querying while the new file was being built and swapped in
    during = [r for r in results if r["end"] >= publish_started and r["start"] <= publish_ended]
    after = [r for r in results if r["start"] > publish_ended]
    assert during and len(after) >= 3
    # every answer is the old version, complete and consistent
    old_revenue = {r["revenue"] for r in results}
    assert {r["run_id"] for r in results} == {"bi-old"}
    assert all(r["counts"] == r["expected"] for r in results)
    assert len(old_revenue) == 1
    assert results[0]["counts"]["dim_clients"] == len(old.tables["dim_clients"][1]) > 0

    # a new connection sees the new version, complete
    assert result.version and Path(result.target) == warehouse
    new = duckdb_marts(warehouse)
    assert new.info["run_id"] == "bi-new"
    assert not published_counts_consistent(new)
    assert not old.differences(new)  # same work DB: same marts


def test_postgres_long_query_survives_publish(reference, pg_url: str, pg_resources) -> None:
    from pipelines.publish.postgres import publish_postgres

    role = pg_resources.role_name("kam_bi_reader")
    publish_postgres(reference.work_db, pg_url, "pg-old", AS_OF_DATE, bi_role=role)
    clients = len(pg_marts(pg_url).tables["dim_clients"][1])
    assert clients > 0

    outcome: dict = {}
    query = "select pg_sleep(3), count(*) from marts.dim_clients"

    def long_query() -> None:
        conn = pg_connect(pg_url, application_name="kam-faults-bi")
        try:
            with conn.cursor() as cur:
                outcome["started"] = time.monotonic()
                cur.execute(query)
                outcome["rows"] = cur.fetchall()
                outcome["ended"] = time.monotonic()
            conn.commit()
        except Exception as exc:  # reported below
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()

    thread = threading.Thread(target=long_query)
    thread.start()
    monitor = pg_connect(pg_url)
    monitor.autocommit = True
    try:
        with monitor.cursor() as cur:
            deadline = time.monotonic() + 10
            running = False
            while time.monotonic() < deadline and not running:
                cur.execute(
                    "select count(*) from pg_stat_activity where application_name = "
                    "'kam-faults-bi' and state = 'active' and query like 'select pg_sleep%%'"
                )
                running = cur.fetchone()[0] == 1
                time.sleep(0.02)
        assert running, "the long query did not start"
        publish_started = time.monotonic()
        result = publish_postgres(reference.work_db, pg_url, "pg-new", AS_OF_DATE, bi_role=role)
        published = time.monotonic()
    finally:
        thread.join(timeout=60)
        monitor.close()

    assert "error" not in outcome, outcome.get("error")
    assert [row[1] for row in outcome["rows"]] == [clients]
    assert outcome["started"] < publish_started < outcome["ended"]  # really overlapped
    assert result.tables["marts.dim_clients"] == clients
    assert published > publish_started
    snap = pg_marts(pg_url)
    assert snap.info["run_id"] == "pg-new"
    assert not published_counts_consistent(snap)
