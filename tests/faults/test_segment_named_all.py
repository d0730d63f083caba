"""Weak point: a segment named ``all`` (valid data) collided with signal_backtest's row
pooled over every segment: every run failed the mart check ``keys_unique_not_null``
(1,010 duplicates) and nothing named the segment.

A generated work DB whose ``horeca`` clients are renamed to segment ``all`` is built with
real dbt; the real mart check of signal_backtest (Great Expectations, as in a run) must
pass, and the segment ``all`` keeps rows of its own beside the pooled rows.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from test_history_interrupted import D, _dbt, build_last_run

from pipelines.quality.checks import CheckContext
from pipelines.quality.mart_checks import MART_CHECKS
from pipelines.quality.runner import run_check


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("segment_all")
    build_last_run(base, dbt=False)
    con = duckdb.connect(str(base / "work.duckdb"))
    try:
        renamed = con.execute(
            "update raw_erp.clients set segment = 'all' where segment = 'horeca'"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert renamed > 0
    _dbt(base, D, "build", "--select", "+signal_backtest")
    return base


def test_segment_named_all_keeps_its_rows_and_passes_the_key_check(renamed: Path) -> None:
    con = duckdb.connect(str(renamed / "work.duckdb"), read_only=True)
    try:
        (check,) = [
            c
            for c in MART_CHECKS
            if c.relation == "marts.signal_backtest" and c.name == "keys_unique_not_null"
        ]
        outcome = run_check(con, check, CheckContext(as_of=D, today=date(2026, 12, 1)))
        assert outcome.success, outcome.failures[:3]
        rows = con.execute(
            "select is_all_segments, count(*) from marts.signal_backtest "
            "where segment = 'all' and period = 'all' group by 1 order by 1"
        ).fetchall()
        # the segment's own rows and the pooled rows, one per flag each (5 flags with a CRM)
        assert rows == [(False, 5), (True, 5)]
        pooled, own = con.execute(
            "select max(cases) filter (where is_all_segments), "
            "max(cases) filter (where not is_all_segments) from marts.signal_backtest "
            "where segment = 'all' and period = 'all'"
        ).fetchall()[0]
        assert pooled > own > 0
    finally:
        con.close()
