"""Helpers of the fault tests: `kam run` as a killable subprocess, warehouse snapshots.

Imported by the test modules of this folder (pytest puts the folder on ``sys.path``).
Nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines.process_guard import descendants, is_alive, process_cmdline

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KAM = BIN / "kam"
AS_OF = "2026-09-30"
AS_OF_DATE = date.fromisoformat(AS_OF)

#: columns whose values legitimately differ between two runs on the same sources
RUN_SPECIFIC_COLUMNS = frozenset(
    {"run_id", "_run_id", "published_at", "loaded_at", "_loaded_at", "storage_version"}
)
INFO_TABLE = "publish_info"
_SUCCESS = re.compile(r"kam: run (\S+) succeeded")


# --------------------------------------------------------------------------- environment


def kam_env(
    *,
    data_dir: Path,
    warehouse: str | Path,
    erp_url: str,
    crm_url: str | None,
    dagster_home: Path,
    dbt_target: Path,
    bi_role: str | None = None,
) -> dict[str, str]:
    """The environment of one `kam run`: no KAM_* or DBT_* variable leaks in from outside."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAM_", "DBT_", "DAGSTER_")) and k != "PYTEST_CURRENT_TEST"
    }
    env.update(
        KAM_DATA_DIR=str(data_dir),
        KAM_WAREHOUSE=str(warehouse),
        KAM_ERP_URL=erp_url,
        DAGSTER_HOME=str(dagster_home),
        DBT_TARGET_PATH=str(dbt_target),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    if crm_url:
        env["KAM_CRM_URL"] = crm_url
    if bi_role is not None:
        env["KAM_BI_ROLE"] = bi_role
    return env


# --------------------------------------------------------------------------- processes


class EventLog:
    """The Dagster event log of the run started after this object was made.

    Read from the sqlite run storage of DAGSTER_HOME (``history/runs.db`` and
    ``history/runs/<run_id>.db``), the way the Dagster UI sees a run: independent of the
    console log level of `kam run`.
    """

    def __init__(self, dagster_home: Path) -> None:
        self.home = Path(dagster_home)
        self.known = set(self._run_ids())
        self.run_id: str | None = None

    def _query(self, db: Path, sql: str) -> list[tuple]:
        if not db.exists():
            return []
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            try:
                return con.execute(sql).fetchall()
            finally:
                con.close()
        except sqlite3.Error:  # being created or written: try again at the next poll
            return []

    def _run_ids(self) -> list[str]:
        rows = self._query(self.home / "history" / "runs.db", "select run_id from runs")
        return [r[0] for r in rows]

    def events(self) -> list[tuple[str, str | None]]:
        """(event type, step key) of the run's events, in order."""
        if self.run_id is None:
            new = [r for r in self._run_ids() if r not in self.known]
            if not new:
                return []
            self.run_id = new[0]
        return self._query(
            self.home / "history" / "runs" / f"{self.run_id}.db",
            "select dagster_event_type, step_key from event_logs "
            "where dagster_event_type is not null order by id",
        )

    def status(self) -> str | None:
        """The run's status in the run storage (STARTED, SUCCESS, FAILURE, ...)."""
        if self.run_id is None:
            self.events()
        rows = self._query(
            self.home / "history" / "runs.db",
            f"select status from runs where run_id = '{self.run_id}'",
        )
        return rows[0][0] if rows else None

    def has(self, event_type: str, step: str) -> bool:
        return (event_type, step) in set(self.events())

    def count(self, event_type: str, step: str) -> int:
        return sum(1 for e in self.events() if e == (event_type, step))


class KamRun:
    """`kam run --as-of D` in its own session; stdout/stderr collected line by line."""

    def __init__(
        self,
        env: dict[str, str],
        as_of: str = AS_OF,
        label: str = "",
        log_path: Path | None = None,
    ) -> None:
        self.label = label
        self.log_path = log_path
        self.events = EventLog(Path(env["DAGSTER_HOME"]))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(KAM), "run", "--as-of", as_of],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self._readers:
            reader.start()
        self.killed_at: float | None = None
        self.survivors: list[str] = []
        self.returncode: int | None = None
        self.seconds: float = 0.0

    def _read(self, stream) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    # -- observing
    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def saw(self, needle: str) -> bool:
        return any(needle in line for line in self.snapshot())

    def wait_for(self, condition: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
        """Poll ``condition`` until true; False on timeout or when the process ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if self.proc.poll() is not None:
                return bool(condition())
            time.sleep(poll)
        return False

    def step_started(self, step: str) -> bool:
        return self.events.has("STEP_START", step)

    def step_finished(self, step: str) -> bool:
        return self.events.has("STEP_SUCCESS", step) or self.events.has("STEP_FAILURE", step)

    # -- ending
    def kill(self) -> None:
        """SIGKILL the process group (and any descendant that left it); record survivors."""
        self.killed_at = time.monotonic()
        family = descendants(self.proc.pid)
        with _suppress_process_lookup():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        alive = [pid for pid in family if is_alive(pid)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [pid for pid in alive if is_alive(pid)]
        self.survivors = [f"{pid}: {process_cmdline(pid)}" for pid in alive]
        for pid in alive:  # never leave a stray writer behind, but report it
            with _suppress_process_lookup():
                os.kill(pid, signal.SIGKILL)
        self._finish()

    def wait(self, timeout: float) -> int:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.label}: kam run did not finish within {timeout:.0f}s\n{self.tail()}"
            ) from None
        self._finish()
        return int(self.returncode)

    def _finish(self) -> None:
        for reader in self._readers:
            reader.join(timeout=10)
        self.returncode = self.proc.returncode
        self.seconds = time.monotonic() - self.started
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text(
                f"# {self.label}: rc {self.returncode}, {self.seconds:.1f}s, "
                f"run {self.events.run_id}\n{self.output}\n"
            )

    @property
    def output(self) -> str:
        return "\n".join(self.snapshot())

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.snapshot()[-lines:])

    def run_id(self) -> str | None:
        for line in self.snapshot():
            match = _SUCCESS.search(line)
            if match:
                return match.group(1)
        return None


class _suppress_process_lookup:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, tb) -> bool:
        return kind is not None and issubclass(kind, ProcessLookupError)


# --------------------------------------------------------------------------- seeds


def make_seed_work_db(path: Path) -> Path:
    """A small work DB whose marts stand for an earlier day's good publish."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts")
        con.execute(
            "create table marts.dim_clients as select * from (values "
            "('C-1', 'Alpha', 'key'), ('C-2', 'Beta', 'mid'), ('C-3', 'Gamma', 'small')) "
            "as t(client_id, client_name, segment)"
        )
        con.execute(
            "create table marts.fct_orders as select * from (values "
            "('O-1', 'C-1', date '2026-09-28', 120.5), ('O-2', 'C-2', date '2026-09-29', 80.0)) "
            "as t(order_id, client_id, order_date, net_revenue)"
        )
        con.execute("checkpoint")
    finally:
        con.close()
    return path


# --------------------------------------------------------------------------- snapshots


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def normalize(value: Any) -> Any:
    """One comparable form for DuckDB and PostgreSQL values of the same column."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        return 0.0 if number == 0 else float(f"{number:.15g}")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


@dataclass
class MartsSnapshot:
    """Every table of schema ``marts``: columns (run-specific ones dropped) and sorted rows."""

    tables: dict[str, tuple[list[str], list[tuple]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # publish_info, as read

    def differences(self, other: MartsSnapshot) -> list[str]:
        problems = []
        if set(self.tables) != set(other.tables):
            problems.append(f"mart tables differ: {sorted(self.tables)} != {sorted(other.tables)}")
        for name in sorted(set(self.tables) & set(other.tables)):
            cols, rows = self.tables[name]
            other_cols, other_rows = other.tables[name]
            if cols != other_cols:
                problems.append(f"marts.{name}: columns {cols} != {other_cols}")
            elif len(rows) != len(other_rows) or not all(
                _same_row(a, b) for a, b in zip(rows, other_rows, strict=True)
            ):
                first = next(
                    (
                        i
                        for i, (a, b) in enumerate(zip(rows, other_rows, strict=False))
                        if not _same_row(a, b)
                    ),
                    min(len(rows), len(other_rows)),
                )
                problems.append(
                    f"marts.{name}: {len(rows)} vs {len(other_rows)} rows; first difference at "
                    f"sorted row {first}: {rows[first : first + 1]} vs "
                    f"{other_rows[first : first + 1]}"
                )
        return problems


#: doubles aggregated in parallel (DuckDB) differ in the last bits from run to run
FLOAT_REL_TOL = 1e-9


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=FLOAT_REL_TOL, abs_tol=1e-12)
    return a == b


def _same_row(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))


def _sort_key(row: tuple) -> str:
    # floats rounded for ordering only, so that last-bit noise cannot reorder rows
    return repr(tuple(float(f"{v:.8g}") if isinstance(v, float) else v for v in row))


def _rows(name: str, raw: list[tuple], columns: list[str]) -> tuple[list[str], list[tuple]]:
    """Comparable rows. The publish bookkeeping keeps only its ``marts`` entries: ``audit``
    holds run logs (e.g. one quarantine_runs row per run), which differ between runs."""
    keep = [i for i, c in enumerate(columns) if c not in RUN_SPECIFIC_COLUMNS]
    rows = [tuple(normalize(row[i]) for i in keep) for row in raw]
    kept = [columns[i] for i in keep]
    if name == "publish_tables":
        rows = [r for r in rows if r[kept.index("schema_name")] == "marts"]
    elif name == INFO_TABLE and "tables_json" in kept:
        at = kept.index("tables_json")
        rows = [
            r[:at]
            + (
                json.dumps(
                    {k: v for k, v in json.loads(r[at]).items() if k.startswith("marts.")},
                    sort_keys=True,
                ),
            )
            + r[at + 1 :]
            for r in rows
        ]
    return kept, sorted(rows, key=_sort_key)


def duckdb_marts(path: Path) -> MartsSnapshot:
    """Snapshot of a published DuckDB warehouse (opened read-only)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        snap = MartsSnapshot()
        for name in names:
            cursor = con.execute(f'select * from marts."{name}"')
            columns = [d[0] for d in cursor.description]
            raw = cursor.fetchall()
            if name == INFO_TABLE and raw:
                snap.info = dict(zip(columns, raw[0], strict=True))
            snap.tables[name] = _rows(name, raw, columns)
        return snap
    finally:
        con.close()


def pg_connect(url: str, **kwargs: Any):
    """psycopg2 connection for a SQLAlchemy-style postgresql URL (user postgres by default)."""
    from pipelines.publish import pg

    return pg.pg_connect(url, user="postgres", connect_timeout=5, **kwargs)


def pg_marts(url: str) -> MartsSnapshot:
    """Snapshot of schema ``marts`` in a PostgreSQL warehouse."""
    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            )
            names = [r[0] for r in cur.fetchall()]
            snap = MartsSnapshot()
            for name in names:
                cur.execute(f'select * from marts."{name}"')
                columns = [d[0] for d in cur.description]
                raw = cur.fetchall()
                if name == INFO_TABLE and raw:
                    snap.info = dict(zip(columns, raw[0], strict=True))
                snap.tables[name] = _rows(name, raw, columns)
        return snap
    finally:
        conn.close()


def published_counts_consistent(snap: MartsSnapshot) -> list[str]:
    """Problems if the row counts of the tables disagree with marts.publish_tables."""
    if "publish_tables" not in snap.tables:
        return ["marts.publish_tables is missing"]
    cols, rows = snap.tables["publish_tables"]
    problems = []
    for row in rows:
        record = dict(zip(cols, row, strict=True))
        if record["schema_name"] != "marts":
            continue
        actual = len(snap.tables.get(record["table_name"], ([], []))[1])
        if actual != int(record["row_count"]):
            problems.append(
                f"marts.{record['table_name']}: {actual} rows, publish_tables says "
                f"{record['row_count']}"
            )
    return problems


def pg_schemas(url: str) -> list[str]:
    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select nspname from pg_namespace where nspname not like 'pg\\_%' "
                "and nspname <> 'information_schema' order by 1"
            )
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def pg_publish_backends(admin_url: str, database: str) -> list[tuple]:
    """(pid, state, backend_xid, query) of the publishing sessions on ``database``."""
    conn = pg_connect(admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select pid, state, backend_xid::text, left(query, 80) from pg_stat_activity "
                "where datname = %s and application_name = 'kam-publish'",
                (database,),
            )
            return cur.fetchall()
    finally:
        conn.close()
