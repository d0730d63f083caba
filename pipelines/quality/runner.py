"""Running checks against the work DB: read-only, DuckDB memory-capped, table by table.

Checks whose expectations DuckDB can count (row-wise ones with a known SQL predicate, and
uniqueness) run SQL first, grouped by the table they read (see
:func:`pipelines.quality.streaming.validate_relation`): the checks of a table that read it
with the default query share one frame, and all of a table's frames go to Great
Expectations in one batch, holding only the rows DuckDB found suspect. Other checks
(``derive`` ones, expectations with no SQL form) are validated one by one as before.
"""

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
from pipelines.quality.streaming import (
    Frame,
    Unit,
    sql_first_supported,
    validate_query,
    validate_relation,
)


def run_check(
    con: duckdb.DuckDBPyConnection,
    check: FrameCheck,
    ctx: CheckContext,
    chunk_rows: int | None = None,
) -> CheckOutcome:
    """Validate one check alone on ``con`` (errors => failed outcome).

    Checks with expectations stream their rows in chunks (see :func:`validate_query`);
    ``derive`` checks read their (aggregated) frame whole. :func:`run_checks` uses it for
    the checks it cannot run SQL first.
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


def _frames(relation: str, members: list[tuple[int, FrameCheck, str, list]]) -> list[Frame]:
    """The frames of one table's SQL-first checks: those reading the table with the
    default query share one frame (the union of their columns); a custom query is a frame
    of its own (shared by checks with the same query)."""
    default: list[Unit] = []
    default_columns: dict[str, None] = {}
    custom: dict[str, Frame] = {}
    for i, check, sql, expectations in members:
        if check.query is None:
            own = tuple(dict.fromkeys((*check.id_columns, *check.columns)))
            default_columns.update(dict.fromkeys(own))
            default.append(Unit(i, check_name(check), expectations, own))
        else:
            unit = Unit(i, check_name(check), expectations, None)
            custom.setdefault(sql, Frame(sql, [])).units.append(unit)
    frames = []
    if default:
        frames.append(Frame(f"select {', '.join(default_columns)} from {relation}", default))
    return frames + list(custom.values())


def _run_on(
    con: duckdb.DuckDBPyConnection,
    checks: list[FrameCheck],
    ctx: CheckContext,
    chunk_rows: int | None,
) -> list[CheckOutcome]:
    outcomes: dict[int, CheckOutcome] = {}
    alone: list[int] = []
    by_relation: dict[str, list[tuple[int, FrameCheck, str, list]]] = {}
    for i, check in enumerate(checks):
        if check.derive is not None:
            alone.append(i)
            continue
        try:
            assert check.expectations is not None
            expectations = check.expectations(ctx)
            sql = check.sql(ctx)
        except Exception as exc:
            outcomes[i] = CheckOutcome(
                success=False, evaluated=0, name=check_name(check), error=_error(exc)
            )
            continue
        if sql_first_supported(expectations):
            by_relation.setdefault(check.relation, []).append((i, check, sql, expectations))
        else:
            alone.append(i)
    for relation, members in by_relation.items():
        cursor = con.cursor()  # a table stopped mid-stream leaves no unfinished result
        try:
            found, fallback = validate_relation(
                cursor, relation, _frames(relation, members), chunk_rows
            )
        except Exception as exc:  # never a pass: each check of the table fails
            found = {
                i: CheckOutcome(
                    success=False, evaluated=0, name=check_name(checks[i]), error=_error(exc)
                )
                for i, *_ in members
            }
            fallback = []
        finally:
            cursor.close()
        outcomes.update(found)
        alone += fallback
    for i in sorted(alone):
        cursor = con.cursor()
        try:
            outcomes[i] = run_check(cursor, checks[i], ctx, chunk_rows)
        finally:
            cursor.close()
    return [outcomes[i] for i in range(len(checks))]


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_checks(
    work_db: Path | str,
    checks: Iterable[FrameCheck],
    ctx: CheckContext,
    chunk_rows: int | None = None,
    memory_limit: str | None = None,
) -> list[tuple[FrameCheck, CheckOutcome]]:
    """Run checks against the work DB, opened read-only for the duration only; one
    outcome per check, in the order given.

    Suspect rows are validated ``chunk_rows`` (default :data:`CHUNK_ROWS`) at a time and
    DuckDB is capped at ``memory_limit`` (default :data:`DUCKDB_MEMORY_LIMIT`), spilling
    its aggregations to a temporary directory beyond it, so memory does not grow with
    history.
    """
    checks = list(checks)
    if not checks:
        return []
    with tempfile.TemporaryDirectory(prefix="kam_checks_") as spill:
        config = {"memory_limit": memory_limit or DUCKDB_MEMORY_LIMIT, "temp_directory": spill}
        con = _connect_read_only(work_db, config)
        try:
            return list(zip(checks, _run_on(con, checks, ctx, chunk_rows), strict=True))
        finally:
            con.close()
