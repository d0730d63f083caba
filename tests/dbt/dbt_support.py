"""What the dbt tests share: the venv's dbt run in a subprocess against a work DB, and a
read-only query of that DB. Whether dbt is there at all is decided once, by the
``dbt_executable`` fixture of tests/dbt/conftest.py (KAM_REQUIRE_DBT=1: a failure)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

from pipelines.settings import declared_default

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt"
#: the dbt of the interpreter running the tests (the venv's, as `make test` runs it)
DBT = Path(sys.executable).with_name("dbt")
#: the work DB's file name in a test's folder
WORK_DB = "work.duckdb"
#: the run parameter KAM_HISTORY_DAYS at its default (dbt needs it with as_of_date)
HISTORY_DAYS = declared_default("history_days")


def dbt_missing_reason() -> str | None:
    """Why dbt cannot run here, or None."""
    if not DBT.exists():
        return f"dbt is not installed beside {sys.executable} ({DBT} is missing; make setup)"
    return None


def run_dbt(
    work_db: Path,
    *args: str,
    target: Path,
    dbt_vars: dict[str, Any] | None = None,
    check: bool = True,
    timeout: int = 600,
) -> subprocess.CompletedProcess[str]:
    """``dbt <args>`` on the project against ``work_db``, with ``target`` as dbt's target path
    and its sibling ``logs`` as the log path. With ``check`` a non-zero exit fails the test
    with the end of dbt's output."""
    env = {
        **os.environ,
        "KAM_WORK_DB": str(work_db),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    cmd = [str(DBT), *args]
    if dbt_vars is not None:
        cmd += ["--vars", json.dumps(dbt_vars)]
    cmd += [
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target-path",
        str(target),
        "--log-path",
        str(target.with_name("logs")),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result


def query(db: Path, sql: str) -> list[tuple]:
    """The rows of ``sql`` on the DuckDB file ``db``, opened read-only."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
