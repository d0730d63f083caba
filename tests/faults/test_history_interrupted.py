"""D1: a run interrupted between client_status_history and the marts derived from it is
repaired by the next run, at every dbt node boundary of the history marts.

The interrupted state is made exactly, with real dbt builds on a generated work DB: the
run of day X builds everything up to and including a node (dbt commits each model on its
own, so this is what a kill -9 right after that node leaves behind), and nothing after it.
Then the run of X+1 runs normally. Its history marts must equal those of an uninterrupted
pair of runs (X, then X+1) from the same starting state. The boundaries, in build order:

* before ``client_status_history`` (every other parent built for X): the history has
  nothing of X, as if the run of X had been missed, so the reference is the run of X+1
  right after D (X reconstructed by it, as for any missed day);
* after ``client_status_history``; after it and ``client_stage_transitions``; after it and
  ``client_lifecycle`` (the two derived marts are siblings: dbt builds either first).

X is ten days after the last run (a gap: the history of the missed days is reconstructed
too), so that stage changes fall between the two runs; the test checks that some do, or it
would prove nothing. Before the fix the interrupted pair dated every one of them on X+1
(the boundary after ``client_status_history``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from faults_support import REPO

from pipelines.extract.raw_schema import ensure_raw_schema
from pipelines.generator.core import generate_demo

DBT = Path(sys.executable).parent / "dbt"
PROJECT = REPO / "dbt"
D = date(2026, 9, 30)
X = D + timedelta(days=10)
NEXT = X + timedelta(days=1)
#: the marts derived from the history, compared between the two paths
DERIVED = {
    "client_status_history": "as_of_date, client_id",
    "client_stage_transitions": "client_id, transition_date",
    "client_lifecycle": "client_id",
}


def _dbt(work: Path, as_of: date, *args: str, **extra_vars: object) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DBT_"))},
        "KAM_WORK_DB": str(work / "work.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    cmd = [
        str(DBT),
        *args,
        "--vars",
        json.dumps({"as_of_date": as_of.isoformat(), "history_days": 365, **extra_vars}),
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        "--exclude",
        "test_type:unit",
        "--indirect-selection",
        "cautious",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def _rows(work: Path, table: str, order: str) -> list[tuple]:
    con = duckdb.connect(str(work / "work.duckdb"), read_only=True)
    try:
        return con.execute(f"select * from marts.{table} order by {order}").fetchall()
    finally:
        con.close()


def build_last_run(base: Path, dbt: bool = True) -> Path:
    """A work DB (``base/work.duckdb``) with the raw layer of 60 generated clients x 3 years,
    and (``dbt``) after the run of D."""
    sources = base / "sources"
    generate_demo(sources, clients=60, years=3, seed=7, end_date=D, fmt="parquet")
    con = duckdb.connect(str(base / "work.duckdb"))
    try:
        ensure_raw_schema(con)
        for system in ("erp", "crm"):
            for path in sorted((sources / system).glob("*.parquet")):
                con.execute(
                    f"insert into raw_{system}.{path.stem} by name "
                    "select *, 'gen' as _run_id, timestamp '2026-09-30 00:00:00' as _loaded_at "
                    f"from read_parquet('{path}')"
                )
    finally:
        con.close()
    if dbt:
        _dbt(base, D, "build", "--select", "+clients.marts")
    return base


@pytest.fixture(scope="module")
def last_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work DB after the run of D (60 generated clients, 3 years)."""
    return build_last_run(tmp_path_factory.mktemp("interrupted_base"))


def _copy(last_run: Path, tmp_path: Path, name: str) -> Path:
    work = tmp_path / name
    work.mkdir()
    shutil.copy(last_run / "work.duckdb", work / "work.duckdb")
    return work


#: what the run of X built before the kill: dbt selections, in build order
BOUNDARIES = {
    "before_status_history": (
        "+client_abc +client_churn_signals +int_clients__lifecycle_today "
        "+int_clients__lifecycle_days"
    ),
    "after_status_history": "+client_status_history",
    "after_transitions": "+client_stage_transitions",
    "after_lifecycle": "+client_lifecycle",
}


@pytest.fixture(scope="module")
def uninterrupted(last_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs of X and X+1 after D, each whole."""
    work = _copy(last_run, tmp_path_factory.mktemp("uninterrupted"), "work")
    _dbt(work, X, "build", "--select", "+clients.marts")
    _dbt(work, NEXT, "build", "--select", "+clients.marts")
    return work


@pytest.fixture(scope="module")
def x_missed(last_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run of X+1 right after D (X never run)."""
    work = _copy(last_run, tmp_path_factory.mktemp("x_missed"), "work")
    _dbt(work, NEXT, "build", "--select", "+clients.marts")
    return work


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_a_kill_at_each_history_node_boundary_is_repaired_by_the_next_run(
    boundary: str, last_run: Path, uninterrupted: Path, x_missed: Path, tmp_path: Path
) -> None:
    interrupted = _copy(last_run, tmp_path, "interrupted")
    # the run of X stops right after the boundary's last node committed
    _dbt(interrupted, X, "build", "--select", *BOUNDARIES[boundary].split())
    _dbt(interrupted, NEXT, "build", "--select", "+clients.marts")

    reference = x_missed if boundary == "before_status_history" else uninterrupted
    changes_between = [
        row
        for row in _rows(reference, "client_stage_transitions", "1, 4")
        if D < row[3] <= X and row[1] is not None
    ]
    assert changes_between, "no stage change between the runs: the test would prove nothing"
    for table, order in DERIVED.items():
        expected = _rows(reference, table, order)
        actual = _rows(interrupted, table, order)
        missing = sorted(set(expected) - set(actual))[:5]
        extra = sorted(set(actual) - set(expected))[:5]
        assert actual == expected, f"{boundary}, {table}: missing {missing}, wrong {extra}"
