"""What the dbt tests share: the venv's dbt run in a subprocess against a work DB, a
read-only query of that DB, and a small generated demo loaded as a raw work DB. Whether dbt
(and, for the Spark test, Java and pyspark) is there at all is decided once, by the
``dbt_executable`` / ``spark_engine`` fixtures of tests/dbt/conftest.py (KAM_REQUIRE_DBT=1:
a failure)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from pipelines.extract.raw_schema import ensure_raw_schema
from pipelines.generator.core import generate_demo
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


#: pyspark 4 runs on Java 17 or later
MIN_JAVA = 17


def spark_missing_reason() -> str | None:
    """Why a local Spark session with dbt-spark cannot run here (pyspark, dbt-spark: `make
    test`; Java 17: Debian's openjdk-17-jre-headless, installed by .ci/run), or None."""
    for module, what in (("pyspark", "pyspark"), ("dbt.adapters.spark", "dbt-spark")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package (dbt.adapters) is missing
            found = False
        if not found:
            return f"{what} is not installed beside {sys.executable} (make test installs it)"
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home, "bin", "java")) if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        return (
            "no java (JAVA_HOME or PATH): Spark needs Java 17+ "
            "(apt-get install openjdk-17-jre-headless; .ci/run does)"
        )
    version = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    found = re.search(r'version "(\d+)', version.stderr + version.stdout)
    if not found or int(found.group(1)) < MIN_JAVA:
        return f"{java} is not Java {MIN_JAVA}+ ({(version.stderr or version.stdout).strip()[:80]})"
    return None


def load_generated(
    raw_db: Path, sources: Path, clients: int, end_date: date, seed: int = 7
) -> None:
    """A generated demo (``clients`` clients, 3 years up to ``end_date``) loaded into a raw
    work DB (the raw layer as the extraction writes it; dbt reads its valid_* views)."""
    generate_demo(sources, clients=clients, years=3, seed=seed, end_date=end_date, fmt="parquet")
    con = duckdb.connect(str(raw_db))
    try:
        ensure_raw_schema(con)
        for system in ("erp", "crm"):
            for path in sorted((sources / system).glob("*.parquet")):
                con.execute(
                    f"insert into raw_{system}.{path.stem} by name "
                    f"select *, 'gen' as _run_id, timestamp '{end_date} 00:00:00' as _loaded_at "
                    f"from read_parquet('{path}')"
                )
    finally:
        con.close()


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
