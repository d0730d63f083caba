"""The churn model's DuckDB memory cut (int_clients__churn_model.py, dbt/models/clients).

From the model on, DuckDB's memory limit (global to the dbt process's database, so also the
other dbt thread's) is cut to a share of itself for the rest of the process (the model's
Python memory stays too); outside dbt-duckdb (no session) nothing is touched.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

MODEL = (
    Path(__file__).resolve().parents[2]
    / "dbt"
    / "models"
    / "clients"
    / "intermediate"
    / "int_clients__churn_model.py"
)


@pytest.fixture(scope="module")
def churn_model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("int_clients__churn_model", MODEL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _limit(con: duckdb.DuckDBPyConnection) -> str:
    (value,) = con.execute("select current_setting('memory_limit')").fetchone()
    return value


def test_bytes_reads_duckdb_sizes(churn_model: ModuleType) -> None:
    assert churn_model._bytes("1GB") == 10**9
    assert churn_model._bytes("953.6 MiB") == int(953.6 * 2**20)
    assert churn_model._bytes("512 KiB") == 512 * 2**10
    assert churn_model._bytes("unlimited") is None


def test_limit_cut_for_every_cursor(churn_model: ModuleType) -> None:
    con = duckdb.connect(config={"memory_limit": "1GB"})
    try:
        full = churn_model._bytes(_limit(con))
        other = con.cursor()  # dbt's other thread
        cut = churn_model.cut_duckdb_memory(con)
        assert cut is not None
        after = churn_model._bytes(_limit(con))
        assert after == pytest.approx(full * churn_model.DUCKDB_SHARE_FROM_SCORING, rel=0.01)
        assert churn_model._bytes(_limit(other)) == after
    finally:
        con.close()


def test_no_session_outside_dbt(churn_model: ModuleType) -> None:
    assert churn_model.cut_duckdb_memory(None) is None


class _RefusingSession:
    """A session whose first `refusals` `set memory_limit` raise as DuckDB does when the
    other dbt thread's query holds more pinned memory than the new limit."""

    def __init__(self, refusals: int) -> None:
        self.con = duckdb.connect(config={"memory_limit": "1GB"})
        self.refusals = refusals
        self.sets = 0

    def execute(self, sql: str) -> duckdb.DuckDBPyConnection:
        if sql.startswith("set memory_limit"):
            self.sets += 1
            if self.sets <= self.refusals:
                raise duckdb.OutOfMemoryException(
                    "Out of Memory Error: Failed to change memory limit to 500000000: "
                    "could not free up enough memory for the new limit"
                )
        return self.con.execute(sql)


def test_refused_cut_tried_again(churn_model: ModuleType) -> None:
    session = _RefusingSession(refusals=1)
    waits: list[float] = []
    lines: list[str] = []
    cut = churn_model.cut_duckdb_memory(
        session, tries=3, wait_seconds=1.5, sleep=waits.append, say=lines.append
    )
    assert cut is not None
    assert session.sets == 2
    assert waits == [1.5]
    full = 10**9
    assert churn_model._bytes(_limit(session.con)) == pytest.approx(
        full * churn_model.DUCKDB_SHARE_FROM_SCORING, rel=0.01
    )
    assert len(lines) == 1 and "try 2 of 3" in lines[0] and "Warning" not in lines[0]


def test_cut_refused_every_time_is_said(churn_model: ModuleType) -> None:
    session = _RefusingSession(refusals=3)
    waits: list[float] = []
    lines: list[str] = []
    before = _limit(session.con)
    cut = churn_model.cut_duckdb_memory(
        session, tries=3, wait_seconds=1.5, sleep=waits.append, say=lines.append
    )
    assert cut is None
    assert session.sets == 3
    assert waits == [1.5, 1.5]  # no wait after the last try
    assert _limit(session.con) == before
    # "Warning" puts the line in the step log too (kam_assets DbtOutput), not only dbt_output.log
    assert len(lines) == 1 and "Warning" in lines[0] and "refused 3 times" in lines[0]
    assert "could not free up enough memory" in lines[0]


_SAY_IN_DBT = """
import importlib.util, sys
from dbt_common.events.base_types import EventLevel
from dbt_common.events.event_manager_client import get_event_manager
from dbt_common.events.logger import LineFormat, LoggerConfig

manager = get_event_manager()
manager.loggers.clear()  # as under dagster-dbt: dbt's JSON lines only
manager.add_logger(LoggerConfig(name="json", line_format=LineFormat.Json,
                                output_stream=sys.stdout, level=EventLevel.DEBUG))
spec = importlib.util.spec_from_file_location("churn_model", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.say_through_dbt("int_clients__churn_model: DuckDB memory limit 1GB -> 500000000B")
module.say_through_dbt("int_clients__churn_model: Warning: DuckDB kept its memory limit 1GB")
"""


def test_lines_are_dbt_events() -> None:
    """In dbt's process the model's lines are dbt events: whole JSON lines written by dbt's
    logger, which dagster-dbt reads. A print() beside dbt's other thread once glued a dbt
    result line to the model's text, so dagster-dbt lost a model's result and the publish
    was skipped (CI of 2026-12-07)."""
    import json
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", _SAY_IN_DBT, str(MODEL)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    said = {e["info"]["msg"]: e["info"]["level"] for e in events}
    assert said == {
        "int_clients__churn_model: DuckDB memory limit 1GB -> 500000000B": "info",
        "int_clients__churn_model: Warning: DuckDB kept its memory limit 1GB": "warn",
    }
