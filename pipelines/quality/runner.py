"""Running checks against the work DB: read-only, DuckDB memory-capped, one at a time."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from pipelines.quality import engine
from pipelines.quality.checks import (
    DUCKDB_MEMORY_LIMIT,
    CheckContext,
    CheckOutcome,
    FrameCheck,
    check_name,
)
from pipelines.quality.streaming import validate_query


def run_check(
    con: duckdb.DuckDBPyConnection,
    check: FrameCheck,
    ctx: CheckContext,
    chunk_rows: int | None = None,
) -> CheckOutcome:
    """Validate the check's query on ``con`` (errors => failed outcome).

    Checks with expectations stream their rows in chunks (see :func:`validate_query`);
    ``derive`` checks read their (aggregated) frame whole.
    """
    name = check_name(check)
    started = time.perf_counter()
    notes: dict[str, Any] = {}
    try:
        if check.derive is None:
            assert check.expectations is not None
            expectations = check.expectations(ctx)
            outcome = validate_query(con, check.sql(ctx), expectations, name, chunk_rows)
            outcome.seconds = time.perf_counter() - started
            return outcome
        df = con.execute(check.sql(ctx)).df()
        derived = check.derive(df, ctx)
        df, expectations, notes = derived.frame, derived.expectations, dict(derived.notes)
        if derived.skipped is not None:
            return CheckOutcome(
                success=True,
                evaluated=0,
                name=name,
                rows=len(df),
                notes=notes,
                skipped=derived.skipped,
                seconds=time.perf_counter() - started,
            )
    except Exception as exc:
        return CheckOutcome(
            success=False,
            evaluated=0,
            error=f"{type(exc).__name__}: {exc}",
            name=name,
            notes=notes,
            seconds=time.perf_counter() - started,
        )
    outcome = engine.validate_frame(df, expectations, name)
    outcome.notes = notes
    outcome.seconds = time.perf_counter() - started
    return outcome


def _connect_read_only(work_db: Path | str, config: dict[str, str]) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(work_db), read_only=True, config=config)
    except duckdb.Error:
        if not config:
            raise
        # the file is already open in this process with another configuration
        return duckdb.connect(str(work_db), read_only=True)


def run_checks(
    work_db: Path | str,
    checks: Iterable[FrameCheck],
    ctx: CheckContext,
    chunk_rows: int | None = None,
    memory_limit: str | None = None,
) -> list[tuple[FrameCheck, CheckOutcome]]:
    """Run checks against the work DB, opened read-only for the duration only.

    Rows are validated ``chunk_rows`` (default :data:`CHUNK_ROWS`) at a time and DuckDB
    is capped at ``memory_limit`` (default :data:`DUCKDB_MEMORY_LIMIT`), spilling its
    aggregations to a temporary directory beyond it, so memory does not grow with history.
    """
    checks = list(checks)
    if not checks:
        return []
    with tempfile.TemporaryDirectory(prefix="kam_checks_") as spill:
        config = {"memory_limit": memory_limit or DUCKDB_MEMORY_LIMIT, "temp_directory": spill}
        con = _connect_read_only(work_db, config)
        try:
            outcomes = []
            for check in checks:
                cursor = con.cursor()  # a check stopped mid-stream leaves no unfinished result
                try:
                    outcomes.append((check, run_check(cursor, check, ctx, chunk_rows)))
                finally:
                    cursor.close()
            return outcomes
        finally:
            con.close()
