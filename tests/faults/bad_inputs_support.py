"""Helpers of test_bad_inputs.py: plant bad rows in generated sources, read results back.

Everything goes through files and plain SQL (sqlite3 / duckdb): nothing of ``pipelines``
is imported here, so the tests survive the moves of the pipeline's modules.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import sqlite3
from pathlib import Path

from faults_support import sha256

from pipelines.process_guard import (
    descendants,
    is_alive,
    process_cmdline,
    process_environ,
    process_table,
)

#: a computed amount at or above this magnitude is not a plausible money value
MAX_PLAUSIBLE_AMOUNT = 1e12

ERP_TABLES = ("clients", "products", "orders", "order_lines", "invoices")


# --------------------------------------------------------------------------- SQLite sources


def sqlite_exec(db: Path, *statements: str, params: list[tuple] | None = None) -> None:
    con = sqlite3.connect(db)
    try:
        for i, sql in enumerate(statements):
            con.execute(sql, (params[i] if params else ()))
        con.commit()
    finally:
        con.close()


def sqlite_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def drop_primary_key(db: Path, table: str) -> None:
    """Rebuild ``table`` with the same columns and declared types but no PRIMARY KEY,
    as a source without constraints (an export, a view, a legacy table) would be."""
    con = sqlite3.connect(db)
    try:
        cols = con.execute(f"pragma table_info({table})").fetchall()
        ddl = ", ".join(
            f'"{name}" {type_}{" NOT NULL" if notnull else ""}'
            for _, name, type_, notnull, _, _ in cols
        )
        names = ", ".join(f'"{c[1]}"' for c in cols)
        con.execute(f'create table "{table}__nopk" ({ddl})')
        con.execute(f'insert into "{table}__nopk" ({names}) select {names} from "{table}"')
        con.execute(f'drop table "{table}"')
        con.execute(f'alter table "{table}__nopk" rename to "{table}"')
        con.commit()
    finally:
        con.close()


def pick_orders(db: Path, as_of: str, count: int, min_lines: int = 2) -> list[str]:
    """Completed orders of distinct clients, placed 10-200 days before ``as_of`` (never on
    the as-of day, whose revenue has its own band check), with at least ``min_lines``
    lines. Deterministic for a given source."""
    rows = sqlite_rows(
        db,
        "select o.order_id, o.client_id from orders o "
        "where o.status = 'completed' "
        "and date(o.order_date) between date(?, '-200 days') and date(?, '-10 days') "
        "and (select count(*) from order_lines l where l.order_id = o.order_id) >= ? "
        "order by o.order_id",
        (as_of, as_of, min_lines),
    )
    picked: list[str] = []
    clients: set[str] = set()
    for order_id, client_id in rows:
        if client_id in clients:
            continue
        picked.append(order_id)
        clients.add(client_id)
        if len(picked) == count:
            return picked
    raise AssertionError(f"only {len(picked)} suitable orders in {db}")


# --------------------------------------------------------------------------- CSV sources


def sqlite_to_csv_folder(db: Path, folder: Path) -> Path:
    """Every ERP table of ``db`` as ``folder/<table>.csv`` (UTF-8, header row, '' = null)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    try:
        for table in ERP_TABLES:
            cursor = con.execute(f'select * from "{table}"')
            header = [d[0] for d in cursor.description]
            with (folder / f"{table}.csv").open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                for row in cursor:
                    writer.writerow(["" if v is None else v for v in row])
    finally:
        con.close()
    return folder


def rewrite_csv_bytes(
    path: Path, victim_key: str, new_name: str, *, whole_file_encoding: str | None
) -> None:
    """Rewrite ``clients.csv``: the victim row first, its client_name replaced.

    ``whole_file_encoding`` None: the file stays UTF-8 except the victim's name, encoded
    latin-1 (one or more bytes that are not UTF-8). Otherwise the whole file is written
    in that encoding.
    """
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    key_at, name_at = header.index("client_id"), header.index("client_name")
    victim = next(r for r in body if r[key_at] == victim_key)
    body.remove(victim)
    victim[name_at] = new_name
    out = bytearray()

    def encode(row: list[str], encoding: str) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(row)
        return buf.getvalue().encode(encoding)

    encoding = whole_file_encoding or "utf-8"
    out += encode(header, encoding)
    out += encode(victim, whole_file_encoding or "latin-1")  # near the start of the file
    for row in body:
        out += encode(row, encoding)
    path.write_bytes(bytes(out))


# --------------------------------------------------------------------------- warehouses


def seed_warehouse(path: Path) -> str:
    """A DuckDB file standing for an earlier good publish; its sha256."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts")
        con.execute(
            "create table marts.fct_orders as select * from (values "
            "('O-1', 'C-1', date '2026-09-28', 120.5)) as t(order_id, client_id, order_date, "
            "net_revenue)"
        )
        # what every publish writes: without it the file is not a kam warehouse, and a run
        # refuses to replace it (issue 22)
        from datetime import date, datetime

        from pipelines.publish.publish_info import write_publish_info

        write_publish_info(
            con.execute,
            "marts",
            {"marts.fct_orders": 1},
            "seed",
            date(2026, 9, 29),
            datetime(2026, 9, 29, 6, 0),
            "v1.0.0",
        )
        con.execute("checkpoint")
    finally:
        con.close()
    return sha256(path)


def query(db: Path, sql: str, params: list | tuple = ()) -> list[tuple]:
    """Rows of ``sql`` on a DuckDB file opened read-only."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def table_exists(db: Path, schema: str, table: str) -> bool:
    return bool(
        query(
            db,
            "select 1 from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        )
    )


def quarantine_rules(db: Path, source_table: str, record_key: str) -> list[str]:
    """Rules of the audit.quarantine rows of one record (one entry per quarantined row)."""
    if not db.exists() or not table_exists(db, "audit", "quarantine"):
        return []
    return [
        r[0]
        for r in query(
            db,
            "select rule from audit.quarantine where source_table = ? and record_key = ? "
            "order by rule",
            [source_table, record_key],
        )
    ]


def net_revenue(db: Path, order_id: str) -> float | None:
    rows = query(db, "select net_revenue from marts.fct_orders where order_id = ?", [order_id])
    return None if not rows else rows[0][0]


def implausible_money(db: Path) -> list[str]:
    """Every published numeric (floating or decimal) value that is NaN, infinite or at
    least MAX_PLAUSIBLE_AMOUNT in magnitude: ``marts.<table>.<column>: n rows, e.g. v``."""
    cols = query(
        db,
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'marts' and (data_type in ('DOUBLE', 'FLOAT', 'REAL') "
        "or data_type like 'DECIMAL%') order by 1, 2",
    )
    problems = []
    for table, column in cols:
        c = f'"{column}"'
        bad = (
            f"isnan(cast({c} as double)) or isinf(cast({c} as double)) "
            f"or abs(cast({c} as double)) >= {MAX_PLAUSIBLE_AMOUNT}"
        )
        n, example = query(db, f'select count(*), any_value({c}) from marts."{table}" where {bad}')[
            0
        ]
        if n:
            problems.append(f"marts.{table}.{column}: {n} rows, e.g. {example!r}")
    return problems


# --------------------------------------------------------------------------- files, processes


def files_containing(needle: bytes, *folders: Path) -> list[str]:
    """Files under ``folders`` (recursively) whose bytes contain ``needle``."""
    hits = []
    for folder in folders:
        if not folder.exists():
            continue
        for path in sorted(folder.rglob("*")):
            try:
                if path.is_file() and needle in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                continue
    return hits


def dbt_processes(pids: list[int]) -> dict[int, str]:
    """The live ones of ``pids`` that are dbt processes: pid -> command line."""
    out = {}
    for pid in pids:
        line = process_cmdline(pid)
        if is_alive(pid) and "dbt" in line and ("build" in line or "dbt-" in line):
            out[pid] = line
    return out


def dbt_descendants(root: int) -> dict[int, str]:
    return dbt_processes(descendants(root))


def processes_with_env(key: str, value: str) -> dict[int, str]:
    """Live processes whose environment has ``key=value`` (read from /proc, as root)."""
    needle = f"{key}={value}".encode()
    out = {}
    for pid, proc in (process_table() or {}).items():
        if pid == os.getpid() or proc.state == "Z":
            continue
        if needle in process_environ(pid):
            out[pid] = process_cmdline(pid)
    return out


def kill_pids(pids) -> None:
    """SIGKILL the given pids (processes this test started), ignoring those already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
