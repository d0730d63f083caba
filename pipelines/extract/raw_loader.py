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
import warnings
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import DUCKDB_TYPES, Table, get_table, tables_of
from pipelines.extract.base import UNREADABLE, Source
from pipelines.extract.casting import UNREADABLE_AT
from pipelines.extract.connect import open_source
from pipelines.extract.raw_schema import (
    DELETED_ROWS,
    DUPLICATE_KEY,
    REJECTED_ROWS,
    ensure_raw_schema,
    raw_table_name,
    record_key_sql,
    rejected_rows_of,
    rejected_value_sql,
)
from pipelines.settings import declared_default

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

DEFAULT_CLOCK_SKEW_MINUTES: int = declared_default("clock_skew_minutes")
DEFAULT_CSV_ENCODING: str = declared_default("csv_encoding")
#: reconciliation removes at most this share of a table's stored rows (the row-count gate's)
DEFAULT_MAX_DELETE_SHARE: float = declared_default("row_drop_max_share")
DEFAULT_RECONCILE_MAX_ROWS: int = declared_default("delete_check_max_rows")

_BATCH_VIEW = "_kam_batch"
_TOUCHED = "_kam_touched_parents"
_STORED = "_kam_stored"  # stored rows replaced by a batch
_DUP = "_kam_duplicate_keys"  # keys read more than once in one load
_SOURCE_KEYS = "_kam_source_keys"  # key reconciliation: every key of the source table
_KEYS_BATCH = "_kam_keys_batch"


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
    rows_deleted: int = 0  # stored rows removed (replaced children, rows gone from the source)
    source_rows: int | None = None  # rows of the table in the source (extract_all counts them)
    rows_rejected: int = 0  # rows read with an unreadable value (raw_meta.rejected_rows)
    rows_duplicate: int = 0  # rows whose key was read more than once (all copies set aside)
    rows_gone: int = 0  # of rows_deleted: keys no longer in the source (raw_meta.deleted_rows)
    rows_ahead: int = 0  # rows with updated_at beyond the run's clock (not in the watermark)


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


def _rejected_columns_sql(alias: str = "b") -> str:
    """SQL text: the unreadable columns of a flagged row, and where it is, e.g.
    ``client_name (clients.csv line 2)``."""
    u = f"{alias}.{UNREADABLE}"
    return (
        f"array_to_string(list_filter(json_keys({u}), lambda k: k <> '{UNREADABLE_AT}'), ', ') "
        f"|| coalesce(' (' || json_extract_string({u}, '$.{UNREADABLE_AT}') || ')', '')"
    )


def _row_json_sql(table: Table, alias: str) -> str:
    return (
        "to_json(struct_pack(" + ", ".join(f"{c} := {alias}.{c}" for c in table.column_names) + "))"
    )


def _flagged_row_json_sql(table: Table, alias: str = "b") -> str:
    """The row as JSON, the original text of its unreadable values in place of the nulls."""
    u = f"{alias}.{UNREADABLE}"
    return (
        f"cast(case when {u} is null then {_row_json_sql(table, alias)} else json_merge_patch("
        f"{_row_json_sql(table, alias)}, json_merge_patch({u}, '{{\"{UNREADABLE_AT}\": null}}')) "
        "end as varchar)"
    )


_REJECTED_COLUMNS = "(system, table_name, record_key, columns, row_json, run_id, rejected_at, rule)"


def _write_chunk(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    batch: pa.RecordBatch,
    run_id: str,
    loaded_at: datetime,
    replace_children: bool,
) -> int:
    """Upsert one batch in one transaction; returns the number of stored rows deleted.

    Rows flagged unreadable go to ``raw_meta.rejected_rows`` instead of the raw table. A key
    read more than once in this load of the table (twice in the batch, or in an earlier
    batch of the same load: its stored row carries this load's ``_loaded_at``) is a
    duplicate: every copy goes to ``raw_meta.rejected_rows`` with rule ``duplicate_key``,
    none stays in the raw table.
    """
    raw = raw_table_name(table)
    cols = ", ".join(table.column_names)
    key_match = " and ".join(f"t.{k} = b.{k}" for k in table.primary_key)
    batch_key = record_key_sql(table, "b")
    key_names = ", ".join(table.primary_key)
    this_load = "x.run_id = ? and x.rejected_at = ?"
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
        # Every key read replaces what was stored for it; a stored row written by this
        # very load makes the key a duplicate.
        with warnings.catch_warnings():  # the copy is what we want: the rows are deleted
            warnings.simplefilter("ignore", UserWarning)
            stored = con.execute(
                f"delete from {raw} t using {_BATCH_VIEW} b where {key_match} returning t.*"
            ).to_arrow_table()
        con.register(_STORED, stored)
        try:
            con.execute(
                f"create or replace temp table {_DUP} as "
                f"select k as record_key from (select {batch_key} as k from {_BATCH_VIEW} b) "
                f"group by k having count(*) > 1 "
                f"union select {record_key_sql(table, 's')} from {_STORED} s "
                f"where s._run_id = ? and s._loaded_at = ? "
                f"union select x.record_key from {rejected_rows_of(table)} and {this_load} "
                f"and x.record_key in (select {batch_key} from {_BATCH_VIEW} b)",
                [run_id, loaded_at, run_id, loaded_at],
            )
            con.execute(
                f"insert into {REJECTED_ROWS} {_REJECTED_COLUMNS} "
                f"select ?, ?, {record_key_sql(table, 's')}, ?, "
                f"cast({_row_json_sql(table, 's')} as varchar), ?, ?, ? from {_STORED} s "
                f"where s._run_id = ? and s._loaded_at = ? "
                f"and {record_key_sql(table, 's')} in (select record_key from {_DUP})",
                [table.system, table.name, key_names, run_id, loaded_at, DUPLICATE_KEY]
                + [run_id, loaded_at],
            )
        finally:
            con.unregister(_STORED)
        con.execute(
            f"update {REJECTED_ROWS} set rule = ?, columns = ? where system = ? and "
            "table_name = ? and run_id = ? and rejected_at = ? and record_key in "
            f"(select record_key from {_DUP})",
            [DUPLICATE_KEY, key_names, table.system, table.name, run_id, loaded_at],
        )
        con.execute(
            f"delete from {rejected_rows_of(table)} and not ({this_load}) and x.record_key in "
            f"(select {batch_key} from {_BATCH_VIEW} b)",
            [run_id, loaded_at],
        )
        not_dup = f"{batch_key} not in (select record_key from {_DUP})"
        con.execute(
            f"insert into {raw} ({cols}, _run_id, _loaded_at) "
            f"select {cols}, ?, ? from {_BATCH_VIEW} b where b.{UNREADABLE} is null and {not_dup}",
            [run_id, loaded_at],
        )
        con.execute(
            f"insert into {REJECTED_ROWS} {_REJECTED_COLUMNS} "
            f"select ?, ?, {batch_key}, {_rejected_columns_sql()}, {_flagged_row_json_sql(table)}, "
            f"?, ?, null from {_BATCH_VIEW} b where b.{UNREADABLE} is not null and {not_dup}",
            [table.system, table.name, run_id, loaded_at],
        )
        con.execute(
            f"insert into {REJECTED_ROWS} {_REJECTED_COLUMNS} "
            f"select ?, ?, {batch_key}, ?, {_flagged_row_json_sql(table)}, ?, ?, ? "
            f"from {_BATCH_VIEW} b where not ({not_dup})",
            [table.system, table.name, key_names, run_id, loaded_at, DUPLICATE_KEY],
        )

    con.register(_BATCH_VIEW, pa.Table.from_batches([batch]))
    try:
        _in_transaction(con, statements)
    finally:
        con.unregister(_BATCH_VIEW)
        con.execute(f"drop table if exists {_DUP}")
    return deleted


def _tombstones_sql(table: Table, where: str) -> str:
    """SQL text: copy the raw rows matching ``where`` (alias r) to raw_meta.deleted_rows."""
    return (
        f"insert into {DELETED_ROWS} select '{table.system}', '{table.name}', "
        f"{record_key_sql(table, 'r')}, cast({_row_json_sql(table, 'r')} as varchar), ?, ? "
        f"from {raw_table_name(table)} r where {where}"
    )


def _reconcile(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    table: Table,
    run_id: str,
    chunk_rows: int,
    max_delete_share: float,
) -> int:
    """Key reconciliation: remove the raw rows (and rejections) whose key is no longer in
    the source; returns the number of raw rows removed.

    Only the key columns are read, streamed ``chunk_rows`` at a time into a DuckDB temp
    table (DuckDB spills it to disk beyond its memory limit). The removed rows are copied
    to ``raw_meta.deleted_rows``. When more than ``max_delete_share`` of the stored rows
    would go (a half-exported table looks like that), nothing is removed and a warning is
    logged: the row-count gate blocks such a run; a run accepted with a higher
    KAM_ROW_DROP_MAX_SHARE removes them.
    """
    keys = [table.column(k) for k in table.primary_key]
    con.execute(
        f"create or replace temp table {_SOURCE_KEYS} ("
        + ", ".join(f"{k.name} {DUCKDB_TYPES[k.type]}" for k in keys)
        + ")"
    )
    try:
        with closing(source.iter_keys(table, chunk_rows)) as batches:
            for batch in batches:
                con.register(_KEYS_BATCH, pa.Table.from_batches([batch]))
                try:
                    con.execute(f"insert into {_SOURCE_KEYS} select * from {_KEYS_BATCH}")
                finally:
                    con.unregister(_KEYS_BATCH)
        match = " and ".join(f"k.{k.name} is not distinct from r.{k.name}" for k in keys)
        gone = f"not exists (select 1 from {_SOURCE_KEYS} k where {match})"
        raw = raw_table_name(table)
        n_gone = _count(con, f"select count(*) from {raw} r where {gone}")
        if n_gone == 0:
            gone_rejected = (
                f"{rejected_rows_of(table)} and x.record_key not in "
                f"(select {record_key_sql(table, 'k')} from {_SOURCE_KEYS} k)"
            )
            if _count(con, f"select count(*) from {gone_rejected}"):
                _in_transaction(con, lambda: con.execute(f"delete from {gone_rejected}"))
            return 0
        stored = _count(con, f"select count(*) from {raw}")
        if n_gone > max_delete_share * stored:
            log.warning(
                "%s.%s: %d of %d stored rows are no longer in the source, more than the "
                "share %.0f%% (KAM_ROW_DROP_MAX_SHARE): not removed; run once with a higher "
                "KAM_ROW_DROP_MAX_SHARE if the source really lost them",
                table.system,
                table.name,
                n_gone,
                stored,
                100 * max_delete_share,
            )
            return 0
        at = _now()

        def remove() -> None:
            con.execute(_tombstones_sql(table, gone), [run_id, at])
            con.execute(f"delete from {raw} r where {gone}")
            con.execute(
                f"delete from {rejected_rows_of(table)} and x.record_key not in "
                f"(select {record_key_sql(table, 'k')} from {_SOURCE_KEYS} k)"
            )

        _in_transaction(con, remove)
        log.info(
            "%s.%s: %d rows deleted at the source removed from the raw layer (kept in %s)",
            table.system,
            table.name,
            n_gone,
            DELETED_ROWS,
        )
        return n_gone
    finally:
        con.execute(f"drop table if exists {_SOURCE_KEYS}")


#: a table above the reconciliation's row limit is reconciled when its last one is this old
RECONCILE_LARGE_EVERY = timedelta(days=7)


def _reconcile_due(
    con: duckdb.DuckDBPyConnection, source: Source, table: Table, max_rows: int, clock: datetime
) -> bool:
    """Every run, unless ``max_rows`` > 0 and the source table holds more rows: then when
    its last reconciliation (``raw_meta.reconciliations``) is RECONCILE_LARGE_EVERY old."""
    if max_rows <= 0:
        return True
    last = con.execute(
        "select reconciled_at from raw_meta.reconciliations where system = ? and table_name = ?",
        [table.system, table.name],
    ).fetchall()
    if not last or last[0][0] <= clock - RECONCILE_LARGE_EVERY:
        return True
    if source.count_rows(table) <= max_rows:
        return True
    log.info(
        "%s.%s: more than %d rows, deletes at the source last checked %s: next check in %s",
        table.system,
        table.name,
        max_rows,
        last[0][0],
        last[0][0] + RECONCILE_LARGE_EVERY - clock,
    )
    return False


@dataclass
class _Loaded:
    read: int = 0
    upserted: int = 0
    deleted: int = 0
    rejected: int = 0
    duplicate: int = 0
    gone: int = 0
    ahead: int = 0  # rows whose incremental value is beyond the run's clock
    max_seen: datetime | None = None  # highest incremental value read, up to the clock


def _load_table(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    table: Table,
    since: datetime | None,
    run_id: str,
    chunk_rows: int,
    *,
    clock: datetime,
    reconcile: bool = True,
    max_delete_share: float = 1.0,
    reconcile_max_rows: int = 0,
) -> _Loaded:
    """Stream one table into the raw layer, then reconcile its keys with the source.

    The highest incremental value read is taken only among values up to ``clock`` (the
    run's clock plus the allowed skew): a row from the future never moves a watermark.
    """
    replace_children = table.parent is not None
    loaded_at = _now()
    out = _Loaded()
    raw = raw_table_name(table)
    had_rows = _count(con, f"select count(*) from (select 1 from {raw} limit 1)") > 0
    if replace_children:
        fk = table.parent[1]  # type: ignore[index]
        fk_type = con.execute(
            "select data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? and column_name = ?",
            [f"raw_{table.system}", table.name, fk],
        ).fetchall()[0][0]
        con.execute(f"create or replace temp table {_TOUCHED} ({fk} {fk_type})")
    bound = pa.scalar(clock, pa.timestamp("us"))
    try:
        with closing(source.iter_batches(table, since, chunk_rows)) as batches:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                out.read += batch.num_rows
                out.deleted += _write_chunk(con, table, batch, run_id, loaded_at, replace_children)
                if table.incremental_column:
                    values = batch.column(table.incremental_column)
                    ahead = pc.greater(values, bound)
                    out.ahead += pc.sum(ahead).as_py() or 0
                    top = pc.max(pc.filter(values, pc.invert(ahead))).as_py()
                    if top is not None and (out.max_seen is None or top > out.max_seen):
                        out.max_seen = top
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
                out.deleted += _count(con, f"delete from {raw} where {where}", params)
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
                con.execute(_tombstones_sql(table, where), [run_id, loaded_at, run_id, loaded_at])
                gone = _count(con, f"delete from {raw} where {where}", [run_id, loaded_at])
                out.deleted += gone
                out.gone += gone
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
    if (
        reconcile
        and had_rows
        and (table.incremental_column is not None or replace_children)
        and _reconcile_due(con, source, table, reconcile_max_rows, clock)
    ):
        gone = _reconcile(con, source, table, run_id, chunk_rows, max_delete_share)
        out.gone += gone
        out.deleted += gone
        _in_transaction(
            con,
            lambda: con.execute(
                "insert or replace into raw_meta.reconciliations values (?, ?, ?, ?)",
                [table.system, table.name, clock, run_id],
            ),
        )
    counts = dict(
        con.execute(
            f"select coalesce(x.rule, 'unreadable'), count(*) from {rejected_rows_of(table)} "
            "and x.run_id = ? and x.rejected_at = ? group by all",
            [run_id, loaded_at],
        ).fetchall()
    )
    out.rejected = int(counts.get("unreadable", 0))
    out.duplicate = int(counts.get(DUPLICATE_KEY, 0))
    out.upserted = out.read - out.rejected - out.duplicate
    return out


class SourceRemovedError(RuntimeError):
    """A system that was configured (its rows are in the raw layer) is not configured now."""


def _stored_rows(con: duckdb.DuckDBPyConnection, system: str) -> int:
    return sum(
        _count(con, f"select count(*) from {raw_table_name(t)}")
        for t in tables_of(system)  # type: ignore[arg-type]
    )


def check_not_gone(con: duckdb.DuckDBPyConnection, system: str, removed: bool) -> None:
    """Refuse to empty a system the work DB was built with, unless it was removed on purpose:
    unsetting KAM_CRM_URL by mistake wiped every CRM row silently."""
    if removed:
        return
    was = con.execute(
        "select configured, source from raw_meta.source_systems where system = ?", [system]
    ).fetchall()
    stored = _stored_rows(con, system)
    if was and was[0][0] and stored:
        env = f"KAM_{system.upper()}_URL"
        raise SourceRemovedError(
            f"{system}: the work DB was built with a {system.upper()} ({was[0][1]}) and holds "
            f"{stored:,} of its rows, but {env} is not set: a run without it would remove "
            f"them all. Set {env} again, or set KAM_{system.upper()}_REMOVED=true if the "
            f"{system.upper()} is gone on purpose (its rows are then removed and kept in "
            "audit.deleted_rows)"
        )


def _clear_system(
    con: duckdb.DuckDBPyConnection, system: str, run_id: str | None = None
) -> list[TableLoad]:
    """An unconfigured system: its raw tables are left empty, its watermarks forgotten; the
    rows removed are kept in raw_meta.deleted_rows (run ``run_id``), like source deletes."""
    loads = []
    for table in tables_of(system):  # type: ignore[arg-type]
        started = time.perf_counter()
        raw = raw_table_name(table)

        def clear(table: Table = table) -> None:
            con.execute(_tombstones_sql(table, "true"), [run_id, _now()])
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


def run_clock(skew_minutes: int, now: datetime | None = None) -> datetime:
    """The latest timestamp a watermark may take: now (UTC, naive) plus the allowed skew."""
    return (now or _now()) + timedelta(minutes=skew_minutes)


def _checked_watermark(
    con: duckdb.DuckDBPyConnection, table: Table, clock: datetime
) -> datetime | None:
    """The stored watermark, or, if it lies beyond the clock (stored before watermarks were
    capped), the highest stored value up to the clock: those rows are read again."""
    before = get_watermark(con, table.system, table.name)
    if before is None or before <= clock:
        return before
    incr = table.incremental_column
    repaired = con.execute(
        f"select max({incr}) from {raw_table_name(table)} where {incr} <= ?", [clock]
    ).fetchall()[0][0]
    log.warning(
        "%s.%s: stored watermark %s is beyond the run's clock %s; reading again from %s",
        table.system,
        table.name,
        before,
        clock,
        repaired,
    )
    return repaired


def extract_system(
    con: duckdb.DuckDBPyConnection,
    source: Source | None,
    system: str,
    run_id: str,
    chunk_rows: int,
    *,
    check: bool = True,
    clock_skew_minutes: int = DEFAULT_CLOCK_SKEW_MINUTES,
    now: datetime | None = None,
    reconcile: bool = True,
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE,
    reconcile_max_rows: int = DEFAULT_RECONCILE_MAX_ROWS,
    removed: bool = False,
) -> list[TableLoad]:
    """Extract every contract table of ``system`` from ``source`` into ``raw_<system>``.

    ``source`` None means the system is not configured: its raw tables are emptied (their
    rows kept as deletes) and ``raw_meta.source_systems`` says configured=false. A system
    that was configured and has rows raises :class:`SourceRemovedError` instead, unless
    ``removed`` (it is gone on purpose). The contract is checked first
    (``check=False`` skips it when the caller already did) so that nothing is written
    from a source that breaks it.

    A watermark never goes beyond ``now`` (UTC, default the wall clock) plus
    ``clock_skew_minutes``. ``reconcile``: after each table, the raw rows whose key is no
    longer in the source are removed (see :func:`_reconcile`; ``max_delete_share`` guards
    against a half-exported table; ``reconcile_max_rows`` > 0: tables with more source rows
    are reconciled once every RECONCILE_LARGE_EVERY instead of every run).
    """
    if source is not None and source.system != system:
        raise ValueError(f"source of {source.system} given for system {system}")
    if source is not None and check:
        source.check_contract()
    ensure_raw_schema(con)
    if source is None:
        check_not_gone(con, system, removed)
    record_source_system(con, system, source)
    if source is None:
        log.info("%s not configured: raw_%s left empty", system, system)
        return _clear_system(con, system, run_id)

    clock = run_clock(clock_skew_minutes, now)
    options = {
        "clock": clock,
        "reconcile": reconcile,
        "max_delete_share": max_delete_share,
        "reconcile_max_rows": reconcile_max_rows,
    }
    tables = tables_of(system)  # type: ignore[arg-type]
    children: dict[str, list[Table]] = {}
    for t in tables:
        if t.parent is not None:
            children.setdefault(t.parent[0], []).append(t)
    loads: list[TableLoad] = []

    def table_load(table: Table, x: _Loaded, before, after, seconds: float) -> TableLoad:
        return TableLoad(
            system,
            table.name,
            x.read,
            x.upserted,
            before,
            after,
            seconds,
            x.deleted,
            rows_rejected=x.rejected,
            rows_duplicate=x.duplicate,
            rows_gone=x.gone,
            rows_ahead=x.ahead,
        )

    for table in tables:
        if table.parent is not None:
            continue  # loaded right after its parent, before the parent's watermark moves
        started = time.perf_counter()
        before = _checked_watermark(con, table, clock) if table.incremental_column else None
        loaded = _load_table(con, source, table, before, run_id, chunk_rows, **options)
        after = before
        if loaded.max_seen is not None and (before is None or loaded.max_seen > before):
            after = loaded.max_seen
        seconds = time.perf_counter() - started
        child_loads = []
        for child in children.get(table.name, []):
            c_started = time.perf_counter()
            c_loaded = _load_table(con, source, child, before, run_id, chunk_rows, **options)
            child_loads.append(
                table_load(child, c_loaded, before, after, time.perf_counter() - c_started)
            )
        stored = get_watermark(con, system, table.name) if table.incremental_column else None
        if after is not None and after != stored:
            _in_transaction(con, lambda t=table, a=after: _set_watermark(con, t, a, run_id))
        loads.append(table_load(table, loaded, before, after, seconds))
        loads += child_loads
        log.info(
            "%s.%s: %d rows read, watermark %s -> %s",
            system,
            table.name,
            loaded.read,
            before,
            after,
        )
        for load in loads[-1 - len(child_loads) :]:
            if load.rows_rejected:
                log.warning(
                    "%s.%s: %d rows with a value that cannot be read as its type kept in "
                    "raw_meta.rejected_rows (quarantined as unreadable_value)",
                    system,
                    load.table,
                    load.rows_rejected,
                )
            if load.rows_duplicate:
                log.warning(
                    "%s.%s: %d rows share a key with another row read in this extraction: "
                    "all kept in raw_meta.rejected_rows (quarantined as duplicate_key)",
                    system,
                    load.table,
                    load.rows_duplicate,
                )
            if load.rows_ahead:
                log.warning(
                    "%s.%s: %d rows with %s after the run's clock %s: stored, not counted "
                    "in the watermark (quarantined as future_date when dated after today)",
                    system,
                    load.table,
                    load.rows_ahead,
                    table.incremental_column,
                    clock,
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
    clock_skew_minutes: int = DEFAULT_CLOCK_SKEW_MINUTES,
    csv_encoding: str = DEFAULT_CSV_ENCODING,
    reconcile: bool = True,
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE,
    reconcile_max_rows: int = DEFAULT_RECONCILE_MAX_ROWS,
    now: datetime | None = None,
    crm_removed: bool = False,
) -> list[TableLoad]:
    """Open both sources, check BOTH contracts, then extract them into ``work_db``.

    Nothing is written to the work DB if either source is unreachable or breaks the
    contract. The DuckDB connection is closed at the end (one writer per file).
    ``duckdb_memory_limit`` (e.g. "512MB") caps DuckDB's own buffer cache.
    ``csv_encoding`` is the encoding of CSV source files; the other options are those of
    :func:`extract_system`.
    """
    if not erp_url:
        raise ValueError("the ERP source is required (KAM_ERP_URL is not set)")
    options = {
        "attempts": connect_attempts,
        "backoff_seconds": connect_backoff_seconds,
        "connect_timeout": connect_timeout,
        "csv_encoding": csv_encoding,
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
                for load in extract_system(
                    con,
                    source,
                    system,
                    run_id,
                    chunk_rows,
                    check=False,
                    clock_skew_minutes=clock_skew_minutes,
                    now=now,
                    reconcile=reconcile,
                    max_delete_share=max_delete_share,
                    reconcile_max_rows=reconcile_max_rows,
                    removed=crm_removed and system == "crm",
                ):
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
