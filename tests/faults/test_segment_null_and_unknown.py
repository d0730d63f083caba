"""A NULL segment and a segment literally named ``unknown`` must not collide.

signal_backtest labels a case without a segment ``unknown`` (``coalesce(segment,
'unknown')``), a name a real segment may have: the two would be counted as one, or break
the mart's key check as the segment ``all`` did. A NULL segment never gets that far: the
contract makes ``clients.segment`` required, so the quarantine takes such a client (rule
``required_null``, with its orders), and it is reported, not labelled.

A generated work DB (60 clients) whose ``horeca`` clients are renamed to segment
``unknown`` and one client of another segment gets a NULL segment; the real quarantine,
then real dbt up to signal_backtest and the real mart check. The NULL-segment client is
quarantined and in no backtest case; the segment ``unknown`` counts exactly its own
clients' cases; the key check passes.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from test_history_interrupted import D, _dbt, build_last_run

from pipelines.gate.quarantine import apply_quarantine
from pipelines.quality.checks import CheckContext
from pipelines.quality.mart_checks import MART_CHECKS
from pipelines.quality.runner import run_check

TODAY = date(2026, 12, 1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("segment_unknown")
    build_last_run(base, dbt=False)
    con = duckdb.connect(str(base / "work.duckdb"))
    try:
        renamed = con.execute(
            "update raw_erp.clients set segment = 'unknown' where segment = 'horeca'"
        ).fetchall()[0][0]
        # a client with orders in the backtest's dates, of a segment other than 'unknown'
        (nameless,) = con.execute(
            "select c.client_id from raw_erp.clients c join raw_erp.orders o using (client_id) "
            "where c.segment <> 'unknown' and o.status = 'completed' "
            "group by c.client_id order by count(*) desc, c.client_id limit 1"
        ).fetchone()
        con.execute("update raw_erp.clients set segment = null where client_id = ?", [nameless])
        apply_quarantine(con, "segment-test", D, today=TODAY)
    finally:
        con.close()
    assert renamed > 0
    _dbt(base, D, "build", "--select", "+signal_backtest")
    return base, nameless


def test_a_null_segment_is_quarantined_not_labelled_unknown(built: tuple[Path, str]) -> None:
    base, nameless = built
    con = duckdb.connect(str(base / "work.duckdb"), read_only=True)
    try:
        rules = con.execute(
            "select rule from audit.quarantine where source_table = 'clients' "
            "and record_key like ?",
            [f"%{nameless}%"],
        ).fetchall()
        assert rules == [("required_null",)], rules
        assert (
            con.execute(
                "select count(*) from audit.quarantine where source_table = 'orders' "
                "and rule = 'parent_quarantined'"
            ).fetchone()[0]
            > 0
        )
        flags = "intermediate.int_clients__backtest_flags"
        assert con.execute(
            f"select count(*) from {flags} where segment is null or client_id = ?", [nameless]
        ).fetchone() == (0,)

        # the segment 'unknown' counts its own clients' cases, nothing else
        own_cases = con.execute(
            f"select count(*) from {flags} where segment = 'unknown'"
        ).fetchone()[0]
        assert own_cases > 0
        assert con.execute(
            "select cases from marts.signal_backtest where period = 'all' "
            "and segment = 'unknown' and not is_all_segments and flag = 'churned'"
        ).fetchall() == [(own_cases,)]

        (check,) = [
            c
            for c in MART_CHECKS
            if c.relation == "marts.signal_backtest" and c.name == "keys_unique_not_null"
        ]
        outcome = run_check(con, check, CheckContext(as_of=D, today=TODAY))
        assert outcome.success, outcome.failures[:3]
    finally:
        con.close()
