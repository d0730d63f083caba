"""Weak point: a full-window backfill grew Dagster's storage by the range. `kam backfill`
of 730 days grew DAGSTER_HOME from 6.7 MB to 745 MB (index.db 600 MB; 365 days: 300 MB):
a run tagged with a partition range makes Dagster record every asset's materialization
once per day of the range, and one planned check row per check and day.

Real `kam run`s on generated sources (100 clients x 2 years, SQLite): the run of one
date, then the backfill of the whole 730-day window. The backfill may grow DAGSTER_HOME
by no more than the first run did (one run's events, plus the files Dagster creates the
first time), and records one materialization per asset.
"""

from __future__ import annotations

import sqlite3
import subprocess
from datetime import date
from pathlib import Path

import pytest
from faults_support import KAM, REPO, kam_env

FIRST_RUN = "2026-09-01"
WINDOW = ("2024-10-01", "2026-09-30")  # KAM_HISTORY_DAYS=730 days up to the data's end


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.generator import generate_demo

    out = tmp_path_factory.mktemp("backfill_storage_demo")
    generate_demo(out, clients=100, years=2, seed=7, end_date=date(2026, 9, 30))
    return out


def _size(folder: Path) -> int:
    """Bytes of every file under ``folder`` (SQLite files with their WAL)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _kam(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KAM), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=1800
    )


def test_a_full_window_backfill_grows_dagster_storage_by_one_run(
    sources: Path, fault_dbt_target: Path, tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    env = kam_env(
        data_dir=tmp_path / "data",
        warehouse=tmp_path / "warehouse" / "kam.duckdb",
        erp_url=f"sqlite:///{sources / 'erp.sqlite'}",
        crm_url=f"sqlite:///{sources / 'crm.sqlite'}",
        dagster_home=home,
        dbt_target=fault_dbt_target,
    )
    first = _kam(env, "run", "--as-of", FIRST_RUN)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    after_run = _size(home)

    backfill = _kam(env, "backfill", "--from", WINDOW[0], "--to", WINDOW[1])
    assert backfill.returncode == 0, backfill.stdout[-3000:] + backfill.stderr[-3000:]
    assert "(730 days in one run" in backfill.stdout, backfill.stdout[-2000:]
    grown = _size(home) - after_run
    mb = 1024 * 1024
    assert grown <= after_run, (
        f"the 730-day backfill grew DAGSTER_HOME by {grown / mb:.1f} MB; "
        f"the first run (one date, new instance) by {after_run / mb:.1f} MB"
    )

    # what Dagster's index holds of each run: the backfill no more than the daily run (one
    # materialization per asset; a planned and an evaluated row per check), not per day
    con = sqlite3.connect(f"file:{home / 'history' / 'runs' / 'index.db'}?mode=ro", uri=True)
    try:
        runs = [
            r[0]
            for r in con.execute(
                "select run_id from event_logs where dagster_event_type = 'PIPELINE_SUCCESS' "
                "order by id"
            ).fetchall()
        ]
        assert len(runs) == 2, runs
        counts = [
            con.execute(
                "select (select count(*) from event_logs where run_id = ?1 "
                "and dagster_event_type = 'ASSET_MATERIALIZATION'), "
                "(select count(*) from asset_check_executions where run_id = ?1)",
                [run_id],
            ).fetchone()
            for run_id in runs
        ]
    finally:
        con.close()
    (daily_materializations, daily_checks), (materializations, checks) = counts
    assert daily_materializations > 50 and daily_checks > 100, counts
    assert materializations <= daily_materializations and checks <= daily_checks, counts
