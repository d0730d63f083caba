"""History that follows corrections: orders changed, deleted or arriving late at the source,
dated inside the history window, rebuild the status history from their date on.

``client_status_history`` keeps the dates earlier runs wrote; a run only writes its own date
(and the missed ones). An order moved back a year, or an old order deleted at the source,
changed where clients stood on every date since, so those dates must be rebuilt. What
changed is found by comparing each order's fingerprint (client, date, status and its lines,
as the valid raw layer holds them) with the fingerprints recorded after the last successful
dbt build (:data:`FINGERPRINT_TABLE` in the work DB). The earliest old or new order date of a
changed order that is not after the history's latest date becomes the run's
``rebuild_from`` (the backfill path rebuilds every date from there; transitions and
lifecycle are rebuilt in full from the history anyway).

The fingerprints are recorded only after the build succeeded (:func:`record_fingerprints`),
so an interrupted run finds the same changes again. The first build of a work DB has no
fingerprints: it reconstructs the whole window anyway.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from pipelines.child_process import run_in_child, serve

log = logging.getLogger(__name__)

FINGERPRINT_TABLE = "kam_state.order_fingerprint"

_CURRENT = """
    select
        o.order_id,
        o.client_id,
        cast(o.order_date as date) as order_date,
        cast(hash(o.client_id, o.order_date, o.status) as hugeint)
        + coalesce(sum(cast(hash(
            l.line_no, l.product_id, l.quantity, l.unit_price, l.unit_cost, l.discount
        ) as hugeint)), 0) as fingerprint
    from valid_erp.orders o
    left join valid_erp.order_lines l on l.order_id = o.order_id
    group by o.order_id, o.client_id, o.order_date, o.status
"""


@dataclass(frozen=True)
class Correction:
    """Orders that changed since the last build, dated inside the built history."""

    rebuild_from: date | None
    changed: int  # orders whose client, date, status or lines changed
    removed: int  # orders no longer in the valid raw layer
    added: int  # orders new since then, dated on or before the history's latest date

    def describe(self) -> str:
        if self.rebuild_from is None:
            return "no order dated inside the built history changed"
        return (
            f"client_status_history rebuilt from {self.rebuild_from}: {self.changed} orders "
            f"changed, {self.removed} removed, {self.added} arrived late at the source"
        )


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
        or con.execute(
            "select count(*) from duckdb_views() where schema_name = ? and view_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def _connect(
    work_db: Path, memory_limit: str | None, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """The work DB with DuckDB's memory capped (beyond it, it spills next to the work DB).
    Without a cap DuckDB may take 80 % of RAM: at 20,000 clients x 3 years the fingerprints
    of 1.4M orders and their lines took 1.2 GB in the kam process, right after dbt.

    If the file is already open in this process, DuckDB refuses another configuration: the
    connection then shares the open database and its limit (only possible when it was opened
    without one, so DuckDB's default, 80 % of RAM), and a warning names the limit in effect
    instead of passing silently. The daily job runs these queries in a child process of
    their own, where the file is never open already."""
    if not memory_limit:
        return duckdb.connect(str(work_db), read_only=read_only)
    try:
        return duckdb.connect(
            str(work_db), read_only=read_only, config={"memory_limit": memory_limit}
        )
    except duckdb.Error as exc:
        refused = str(exc)
        con = duckdb.connect(str(work_db), read_only=read_only)
    in_effect = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    log.warning(
        "history corrections: %s is already open in this process (%s); its DuckDB memory "
        "limit %s applies, not %s",
        work_db,
        refused,
        in_effect,
        memory_limit,
    )
    return con


def find_correction(
    work_db: Path, as_of: date, history_days: int, memory_limit: str | None = None
) -> Correction:
    """What changed at the source since the last build, inside the built history."""
    none = Correction(None, 0, 0, 0)
    if not Path(work_db).is_file():
        return none
    con = _connect(work_db, memory_limit, read_only=True)
    try:
        if not (
            _exists(con, "kam_state", "order_fingerprint")
            and _exists(con, "marts", "client_status_history")
            and _exists(con, "valid_erp", "orders")
        ):
            return none
        latest = con.execute("select max(as_of_date) from marts.client_status_history").fetchall()
        if not latest or latest[0][0] is None:
            return none
        window_start = as_of - timedelta(days=history_days - 1)
        # only dates the history already holds (up to its latest date, before D) matter
        last_built = min(latest[0][0], as_of - timedelta(days=1))
        row = con.execute(
            f"""
            with cur_orders as ({_CURRENT}),
            diff as (
                select
                    coalesce(least(c.order_date, f.order_date), c.order_date, f.order_date)
                        as first_date,
                    coalesce(greatest(c.order_date, f.order_date), c.order_date, f.order_date)
                        as last_date,
                    case
                        when f.order_id is null then 'added'
                        when c.order_id is null then 'removed'
                        else 'changed'
                    end as kind
                from cur_orders c
                full join {FINGERPRINT_TABLE} f on c.order_id = f.order_id
                where
                    f.order_id is null
                    or c.order_id is null
                    or c.fingerprint != f.fingerprint
                    or c.client_id != f.client_id
                    or c.order_date != f.order_date
            )
            select
                min(first_date),
                count(*) filter (where kind = 'changed'),
                count(*) filter (where kind = 'removed'),
                count(*) filter (where kind = 'added')
            from diff
            -- touching a built date: one of its dates inside the window, not after the
            -- history's latest date (an order moved out of the window counts too)
            where first_date <= ? and last_date >= ?
            """,
            [last_built, window_start],
        ).fetchall()[0]
    finally:
        con.close()
    first = None if row[0] is None else max(row[0], window_start)
    return Correction(first, int(row[1]), int(row[2]), int(row[3]))


def record_fingerprints(work_db: Path, memory_limit: str | None = None) -> int:
    """Replace the recorded fingerprints by the valid raw layer's (after a successful
    build); the number of orders recorded."""
    con = _connect(work_db, memory_limit)
    try:
        if not _exists(con, "valid_erp", "orders"):
            return 0
        con.execute("create schema if not exists kam_state")
        con.execute(f"create or replace table {FINGERPRINT_TABLE} as {_CURRENT}")
        return int(con.execute(f"select count(*) from {FINGERPRINT_TABLE}").fetchall()[0][0])
    finally:
        con.close()


# -- in a child process ------------------------------------------------------------------------
#
# The daily job runs in one long-lived kam process. DuckDB gives its memory back when the
# connection closes, but not at once: at 20,000 clients the mart checks' child process was
# started while the kam process still held ~1.3 GB of these queries' memory (capped at 1GB),
# and a child forked from it shows that memory too until it executes (the benchmark's tree
# summed 2,528 MB for a moment). In a child of their own, these queries never grow the kam
# process.


def _run_child(request: dict[str, Any]) -> Any:
    run = run_in_child("pipelines.history_corrections", request)
    if not run.ok:
        raise RuntimeError(
            f"history corrections ({request['do']}) failed in its process: {run.failure()}"
        )
    return run.result


def find_correction_in_child(
    work_db: Path, as_of: date, history_days: int, memory_limit: str | None = None
) -> Correction:
    """:func:`find_correction` in a child process (see above)."""
    request = {
        "do": "find",
        "work_db": work_db,
        "as_of": as_of,
        "history_days": history_days,
        "memory_limit": memory_limit,
    }
    # sent back as a dict: run as __main__, the child's Correction class is __main__'s
    return Correction(**_run_child(request))


def record_fingerprints_in_child(work_db: Path, memory_limit: str | None = None) -> int:
    """:func:`record_fingerprints` in a child process (see above)."""
    return int(_run_child({"do": "record", "work_db": work_db, "memory_limit": memory_limit}))


def _serve(request: dict[str, Any]) -> dict[str, Any] | int:
    work_db, limit = Path(request["work_db"]), request["memory_limit"]
    if request["do"] == "find":
        found = find_correction(work_db, request["as_of"], request["history_days"], limit)
        return asdict(found)
    return record_fingerprints(work_db, limit)


if __name__ == "__main__":
    sys.exit(serve(_serve))
