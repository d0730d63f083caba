"""Incremental, idempotent extraction of the sources into the raw layer of the work DuckDB.

* Tables with an incremental column (``updated_at``) are read from the stored
  watermark (inclusive) and upserted on their primary key, chunk by chunk, each chunk
  in its own transaction (delete the batch's keys, insert the batch).
* Child tables (``order_lines``) are read for the parents changed since the parent's
  watermark, and replace the stored children of those parents.
* Tables without an incremental column (``managers``) are read in full, upserted, and
  rows no longer in the source are removed once the table is fully read.
* A watermark advances to the maximum value read only after its table (and its children)
  are fully loaded: a crash anywhere re-reads what was not committed, and the upsert makes
  re-reading harmless. Re-running a day never duplicates or loses a row.
* A row with a value that cannot be read as its contract type (``pipelines.extract``
  flags it in ``_unreadable``) is not stored in the raw table: it goes to
  ``raw_meta.rejected_rows`` (its key, the unreadable columns, the row as JSON with the
  original text), and the stored version of that key, now stale, is removed. A row read
  again replaces its rejection (a fixed row leaves it), a full read or a replaced parent
  drops the rejections of rows no longer in the source, exactly as for stored rows.
  ``pipelines.gate.quarantine`` counts these rows as rule ``unreadable_value``.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import Table, get_table, tables_of
from pipelines.extract.base import UNREADABLE, Source
from pipelines.extract.connect import open_source
from pipelines.extract.raw_schema import (
    REJECTED_ROWS,
    ensure_raw_schema,
    raw_table_name,
    record_key_sql,
    rejected_rows_of,
    rejected_value_sql,
)

__all__ = [
    "TableLoad",
    "ensure_raw_schema",
    "ensure_source_counts",
    "extract_all",
    "extract_system",
    "get_watermark",
    "record_source_counts",
    "record_source_system",
]

log = logging.getLogger(__name__)

_BATCH_VIEW = "_kam_batch"
_TOUCHED = "_kam_touched_parents"


@dataclass
class TableLoad:
    """What one extraction did to one raw table."""

    system: str
    table: str
    rows_read: int
    rows_upserted: int
    watermark_before: datetime | None
    watermark_after: datetime | None
    seconds: float
    rows_deleted: int = 0  # stored rows removed (replaced children, rows gone from a full read)
    source_rows: int | None = None  # rows of the table in the source (extract_all counts them)
    rows_rejected: int = 0  # rows read with an unreadable value (raw_meta.rejected_rows)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def get_watermark(con: duckdb.DuckDBPyConnection, system: str, table: str) -> datetime | None:
    row = con.execute(
        "select watermark from raw_meta.watermarks where system = ? and table_name = ?",
        [system, table],
    ).fetchall()
    return row[0][0] if row else None


def _set_watermark(
    con: duckdb.DuckDBPyConnection, table: Table, watermark: datetime, run_id: str
) -> None:
    con.execute(
        "insert or replace into raw_meta.watermarks values (?, ?, ?, ?, ?, ?)",
        [table.system, table.name, table.incremental_column, watermark, run_id, _now()],
    )


def record_source_system(
    con: duckdb.DuckDBPyConnection, system: str, source: Source | None
) -> None:
    """Record whether ``system`` is configured, and where it is read from (masked)."""
    con.execute(
        "insert or replace into raw_meta.source_systems values (?, ?, ?, ?)",
        [system, source is not None, source.location if source else None, _now()],
    )


def ensure_source_counts(con: duckdb.DuckDBPyConnection) -> None:
    """``raw_meta.source_counts``: rows of every source table, counted at each extraction.

    ``accepted`` is set by the row-count gate (``pipelines.gate.batch_gates``): only accepted
    counts are the reference of later runs, so re-running a blocked day does not make a
    lost half of a table look normal.
    """
    con.execute("create schema if not exists raw_meta")
    con.execute(
        """
        create table if not exists raw_meta.source_counts (
            run_id varchar, system varchar, table_name varchar, source_rows bigint,
            counted_at timestamp, accepted boolean,
            primary key (run_id, system, table_name)
        )
        """
    )


def record_source_counts(
    con: duckdb.DuckDBPyConnection, source: Source, run_id: str
) -> dict[str, int]:
    """Count every contract table of ``source`` and record it in ``raw_meta.source_counts``."""
    ensure_source_counts(con)
    counts = {t.name: source.count_rows(t) for t in tables_of(source.system)}  # type: ignore[arg-type]
    at = _now()
    con.executemany(
        "insert or replace into raw_meta.source_counts values (?, ?, ?, ?, ?, null)",
        [[run_id, source.system, name, n, at] for name, n in counts.items()],
    )
    return counts


def _in_transaction(con: duckdb.DuckDBPyConnection, statements) -> None:
    con.begin()
    try:
        statements()
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    """First value of a query (or the row count a DuckDB delete returns)."""
    rows = con.execute(sql, params or []).fetchall()  # DuckDB 2: always fetch fully
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _dedupe_clause(table: Table) -> str:
    keys = ", ".join(table.primary_key)
    order = (
        f" order by {table.incremental_column} desc nulls last" if table.incremental_column else ""
    )
    return f"qualify row_number() over (partition by {keys}{order}) = 1"


def _write_chunk(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    batch: pa.RecordBatch,
    run_id: str,
    loaded_at: datetime,
    replace_children: bool,
) -> int:
    """Upsert one batch in one transaction; returns the number of stored rows deleted.

    Rows flagged unreadable go to ``raw_meta.rejected_rows`` instead of the raw table.
    """
    raw = raw_table_name(table)
    cols = ", ".join(table.column_names)
    key_match = " and ".join(f"t.{k} = b.{k}" for k in table.primary_key)
    deduped = f"(select * from {_BATCH_VIEW} {_dedupe_clause(table)}) b"
    row_json = (
        "to_json(struct_pack(" + ", ".join(f"{c} := b.{c}" for c in table.column_names) + "))"
    )
    deleted = 0

    def statements() -> None:
        nonlocal deleted
        if replace_children:
            fk = table.parent[1]  # type: ignore[index]
            # Parents met for the first time in this load: drop all their stored children.
            con.execute(
                f"create or replace temp view _kam_new_parents as "
                f"select distinct {fk} from {_BATCH_VIEW} where {fk} is not null "
                f"except select {fk} from {_TOUCHED}"
            )
            deleted += _count(
                con, f"delete from {raw} where {fk} in (select {fk} from _kam_new_parents)"
            )
            con.execute(
                f"delete from {rejected_rows_of(table)} and {rejected_value_sql(fk)} in "
                f"(select cast({fk} as varchar) from _kam_new_parents)"
            )
            con.execute(f"insert into {_TOUCHED} select {fk} from _kam_new_parents")
        # Every key read replaces what was stored for it: its raw row and its rejection.
        con.execute(f"delete from {raw} t using {_BATCH_VIEW} b where {key_match}")
        con.execute(
            f"delete from {rejected_rows_of(table)} and x.record_key in "
            f"(select {record_key_sql(table, 'b')} from {_BATCH_VIEW} b)"
        )
        con.execute(
            f"insert into {raw} ({cols}, _run_id, _loaded_at) "
            f"select {cols}, ?, ? from {deduped} where b.{UNREADABLE} is null",
            [run_id, loaded_at],
        )
        con.execute(
            f"insert into {REJECTED_ROWS} "
            f"select ?, ?, {record_key_sql(table, 'b')}, "
            f"array_to_string(json_keys(b.{UNREADABLE}), ', '), "
            f"cast(json_merge_patch({row_json}, b.{UNREADABLE}) as varchar), ?, ? "
            f"from {deduped} where b.{UNREADABLE} is not null",
            [table.system, table.name, run_id, loaded_at],
        )

    con.register(_BATCH_VIEW, pa.Table.from_batches([batch]))
    try:
        _in_transaction(con, statements)
    finally:
        con.unregister(_BATCH_VIEW)
    return deleted


def _load_table(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    table: Table,
    since: datetime | None,
    run_id: str,
    chunk_rows: int,
) -> tuple[int, int, int, datetime | None]:
    """Stream one table into the raw layer.

    Returns rows read, upserted, deleted, rejected, and the maximum incremental value read.
    """
    replace_children = table.parent is not None
    loaded_at = _now()
    rows_read = rows_upserted = rows_deleted = rows_rejected = 0
    max_seen: datetime | None = None
    raw = raw_table_name(table)
    if replace_children:
        fk = table.parent[1]  # type: ignore[index]
        fk_type = con.execute(
            "select data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? and column_name = ?",
            [f"raw_{table.system}", table.name, fk],
        ).fetchall()[0][0]
        con.execute(f"create or replace temp table {_TOUCHED} ({fk} {fk_type})")
    try:
        with closing(source.iter_batches(table, since, chunk_rows)) as batches:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                rows_read += batch.num_rows
                rows_deleted += _write_chunk(con, table, batch, run_id, loaded_at, replace_children)
                rejected = batch.num_rows - batch.column(UNREADABLE).null_count
                rows_rejected += rejected
                rows_upserted += batch.num_rows - rejected
                if table.incremental_column:
                    top = pc.max(batch.column(table.incremental_column)).as_py()
                    if top is not None and (max_seen is None or top > max_seen):
                        max_seen = top
        if replace_children:
            # Changed parents that no longer have any child: drop their stored children.
            parent = get_table(table.system, table.parent[0])  # type: ignore[index]
            fk = table.parent[1]  # type: ignore[index]
            changed = f"select {fk} from {raw_table_name(parent)}"
            params: list = []
            if since is not None:
                changed += f" where {parent.incremental_column} >= ?"
                params = [since]
            where = f"{fk} in ({changed}) and {fk} not in (select {fk} from {_TOUCHED})"

            def drop_orphans() -> None:
                nonlocal rows_deleted
                rows_deleted += _count(con, f"delete from {raw} where {where}", params)
                parent_key = rejected_value_sql(fk)
                con.execute(
                    f"delete from {rejected_rows_of(table)} and {parent_key} in "
                    f"(select cast({fk} as varchar) from ({changed})) and {parent_key} not in "
                    f"(select cast({fk} as varchar) from {_TOUCHED})",
                    params,
                )

            _in_transaction(con, drop_orphans)
        elif table.incremental_column is None:
            # Full read: rows not written by this load are no longer in the source.
            where = "not (_run_id = ? and _loaded_at = ?)"

            def drop_gone() -> None:
                nonlocal rows_deleted
                rows_deleted += _count(con, f"delete from {raw} where {where}", [run_id, loaded_at])
                con.execute(
                    f"delete from {rejected_rows_of(table)} "
                    "and not (x.run_id = ? and x.rejected_at = ?)",
                    [run_id, loaded_at],
                )

            _in_transaction(con, drop_gone)
    finally:
        if replace_children:
            con.execute(f"drop table if exists {_TOUCHED}")
            con.execute("drop view if exists _kam_new_parents")
    return rows_read, rows_upserted, rows_deleted, rows_rejected, max_seen


def _clear_system(con: duckdb.DuckDBPyConnection, system: str) -> list[TableLoad]:
    """An unconfigured system: its raw tables are left empty, its watermarks forgotten."""
    loads = []
    for table in tables_of(system):  # type: ignore[arg-type]
        started = time.perf_counter()
        raw = raw_table_name(table)

        def clear(table: Table = table) -> None:
            con.execute(f"delete from {raw_table_name(table)}")
            con.execute(f"delete from {rejected_rows_of(table)}")
            con.execute(
                "delete from raw_meta.watermarks where system = ? and table_name = ?",
                [system, table.name],
            )

        deleted = _count(con, f"select count(*) from {raw}")
        _in_transaction(con, clear)
        loads.append(
            TableLoad(system, table.name, 0, 0, None, None, time.perf_counter() - started, deleted)
        )
    return loads


def extract_system(
    con: duckdb.DuckDBPyConnection,
    source: Source | None,
    system: str,
    run_id: str,
    chunk_rows: int,
    *,
    check: bool = True,
) -> list[TableLoad]:
    """Extract every contract table of ``system`` from ``source`` into ``raw_<system>``.

    ``source`` None means the system is not configured: its raw tables are emptied and
    ``raw_meta.source_systems`` says configured=false. The contract is checked first
    (``check=False`` skips it when the caller already did) so that nothing is written
    from a source that breaks it.
    """
    if source is not None and source.system != system:
        raise ValueError(f"source of {source.system} given for system {system}")
    if source is not None and check:
        source.check_contract()
    ensure_raw_schema(con)
    record_source_system(con, system, source)
    if source is None:
        log.info("%s not configured: raw_%s left empty", system, system)
        return _clear_system(con, system)

    tables = tables_of(system)  # type: ignore[arg-type]
    children: dict[str, list[Table]] = {}
    for t in tables:
        if t.parent is not None:
            children.setdefault(t.parent[0], []).append(t)
    loads: list[TableLoad] = []
    for table in tables:
        if table.parent is not None:
            continue  # loaded right after its parent, before the parent's watermark moves
        started = time.perf_counter()
        before = get_watermark(con, system, table.name) if table.incremental_column else None
        read, upserted, deleted, rejected, max_seen = _load_table(
            con, source, table, before, run_id, chunk_rows
        )
        after = before
        if max_seen is not None and (before is None or max_seen > before):
            after = max_seen
        seconds = time.perf_counter() - started
        child_loads = []
        for child in children.get(table.name, []):
            c_started = time.perf_counter()
            c_read, c_up, c_del, c_rej, _ = _load_table(
                con, source, child, before, run_id, chunk_rows
            )
            child_loads.append(
                TableLoad(
                    system,
                    child.name,
                    c_read,
                    c_up,
                    before,
                    after,
                    time.perf_counter() - c_started,
                    c_del,
                    rows_rejected=c_rej,
                )
            )
        if after is not None and after != before:
            _in_transaction(con, lambda t=table, a=after: _set_watermark(con, t, a, run_id))
        loads.append(
            TableLoad(
                system,
                table.name,
                read,
                upserted,
                before,
                after,
                seconds,
                deleted,
                rows_rejected=rejected,
            )
        )
        loads += child_loads
        log.info("%s.%s: %d rows read, watermark %s -> %s", system, table.name, read, before, after)
        for load in loads[-1 - len(child_loads) :]:
            if load.rows_rejected:
                log.warning(
                    "%s.%s: %d rows with a value that cannot be read as its type kept in "
                    "raw_meta.rejected_rows (quarantined as unreadable_value)",
                    system,
                    load.table,
                    load.rows_rejected,
                )
    return loads


def extract_all(
    work_db: Path,
    erp_url: str,
    crm_url: str | None,
    run_id: str,
    chunk_rows: int,
    *,
    connect_attempts: int = 3,
    connect_backoff_seconds: float = 1.0,
    connect_timeout: float = 10.0,
    duckdb_memory_limit: str | None = None,
) -> list[TableLoad]:
    """Open both sources, check BOTH contracts, then extract them into ``work_db``.

    Nothing is written to the work DB if either source is unreachable or breaks the
    contract. The DuckDB connection is closed at the end (one writer per file).
    ``duckdb_memory_limit`` (e.g. "512MB") caps DuckDB's own buffer cache.
    """
    if not erp_url:
        raise ValueError("the ERP source is required (KAM_ERP_URL is not set)")
    options = {
        "attempts": connect_attempts,
        "backoff_seconds": connect_backoff_seconds,
        "connect_timeout": connect_timeout,
    }
    sources: dict[str, Source | None] = {"erp": None, "crm": None}
    try:
        sources["erp"] = open_source("erp", erp_url, **options)
        if crm_url:
            sources["crm"] = open_source("crm", crm_url, **options)
        for source in sources.values():
            if source is not None:
                source.check_contract()
        work_db = Path(work_db)
        work_db.parent.mkdir(parents=True, exist_ok=True)
        config = {"memory_limit": duckdb_memory_limit} if duckdb_memory_limit else {}
        con = duckdb.connect(str(work_db), config=config)
        try:
            ensure_raw_schema(con)
            loads: list[TableLoad] = []
            for system in ("erp", "crm"):
                source = sources[system]
                counts = record_source_counts(con, source, run_id) if source else {}
                for load in extract_system(con, source, system, run_id, chunk_rows, check=False):
                    load.source_rows = counts.get(load.table)
                    loads.append(load)
            con.execute("checkpoint")
            return loads
        finally:
            con.close()
    finally:
        for source in sources.values():
            if source is not None:
                source.close()
