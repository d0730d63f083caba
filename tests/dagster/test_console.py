"""kam's console logger: a failure's "Dependencies ... failed" consequences said once."""

from __future__ import annotations

import logging

from kam_assets.console import KamFormatter, OnceAFailure


def _record(message: str, step: str) -> logging.LogRecord:
    record = logging.LogRecord("kam", logging.ERROR, __file__, 1, message, None, None)
    record.dagster_meta = {"orig_message": message, "step_key": step}
    return record


def test_the_steps_not_executed_after_a_failure_are_said_once() -> None:
    gate = "['quality_gates', 'quality_gates', 'quality_gates']"
    messages = [
        (
            "raw_quality_checks",
            f"Dependencies for step raw_quality_checks failed: {gate}. Not executing.",
        ),
        ("dbt_build", f"Dependencies for step dbt_build failed: {gate}. Not executing."),
        (
            "mart_checks",
            "Dependencies for step mart_checks were not executed: ['dbt_build']. Not executing.",
        ),
        (
            "warehouse",
            "Dependencies for step warehouse failed: ['extract_sources']. Not executing.",
        ),
        ("extract_sources", "extract_sources: 3 tables loaded"),
    ]
    once, formatter = OnceAFailure(), KamFormatter(with_stack=False)
    shown = [formatter.format(r) for r in (_record(m, s) for s, m in messages) if once.filter(r)]
    assert [line.split(" ", 1)[1] for line in shown] == [
        "raw_quality_checks: not executed: raw_quality_checks and the steps after it "
        "(quality_gates failed)",
        "warehouse: not executed: warehouse and the steps after it (extract_sources failed)",
        "extract_sources: extract_sources: 3 tables loaded",
    ]
