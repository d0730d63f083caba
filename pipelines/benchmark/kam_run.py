"""A real ``kam run`` timed from outside, split into phases by its Dagster step events.

The run is the command a user types, in a subprocess with its own ``KAM_DATA_DIR`` (so its
Dagster instance, work DB and warehouse are fresh). Its phases come from the run's event
log, read straight from the instance's SQLite storage
(``$DAGSTER_HOME/history/runs/<run_id>.db``, table ``event_logs``): this package never
imports Dagster. Start-up is the wall time before the first step starts; "outside steps"
is the time between steps and after the last one.

Peak memory: ``ru_maxrss`` from ``wait4`` is that of the largest single process of the tree
(kam, or dbt which kam reaps); the summed RSS of the whole tree is sampled from ``/proc``.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from pipelines.process_guard import descendants, process_table

#: step key of the daily job -> benchmark phase (kam_assets/defs: ingest, transform, publish)
STEP_PHASES = {
    "extract_sources": "extract",
    "quality_gates": "gates",
    "raw_quality_checks": "raw checks",
    "dbt_build": "dbt build",
    "mart_quality_checks": "mart checks",
    "warehouse": "publish",
}
#: the first asset key part a step materializes or checks -> phase (a step renamed later)
_GROUP_PHASES = {
    "erp": "raw checks",
    "crm": "raw checks",
    "staging": "dbt build",
    "intermediate": "dbt build",
    "seeds": "dbt build",
    "warehouse": "publish",
}
_RUN_ID = re.compile(r"kam: run ([0-9a-f-]{36}) ")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


@dataclass
class Step:
    key: str
    phase: str
    start: float  # epoch seconds
    end: float
    status: str


@dataclass
class KamRun:
    """What one ``kam run`` cost: wall time, its steps, memory, exit code, output tail."""

    as_of: str
    exit_code: int
    wall_seconds: float
    spawned_at: float
    run_id: str | None
    first_event_at: float | None = None
    steps: list[Step] = field(default_factory=list)
    max_process_rss_mb: float = 0.0
    tree_rss_mb: float = 0.0
    dbt_elapsed_seconds: float | None = None
    parsed_dbt_project: bool = False
    output_tail: str = ""


class TreeRssSampler(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants (Linux ``/proc``)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_kb = pid, interval, 0
        self._stop_event = threading.Event()

    def _tree_kb(self) -> int | None:
        table = process_table()
        if table is None:
            return None
        tree = [self.pid, *descendants(self.pid, table)]
        return sum(table[p].rss_pages for p in tree if p in table) * _PAGE_KB

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            tree_kb = self._tree_kb()
            if tree_kb is None:
                return  # no /proc: no sampled figure
            self.peak_kb = max(self.peak_kb, tree_kb)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=2)


def kam_env(data_dir: Path, erp_url: str, crm_url: str | None) -> dict[str, str]:
    """The environment of a user's ``kam run`` on these sources, everything under data_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DAGSTER_", "DBT_"))}
    keep = (
        "KAM_DBT_THREADS",
        "KAM_CHUNK_ROWS",
        "KAM_HISTORY_DAYS",
        "KAM_LOG_LEVEL",
        "KAM_DUCKDB_MEMORY_LIMIT",
    )
    env.update({k: os.environ[k] for k in keep if k in os.environ})
    env.update(KAM_DATA_DIR=str(data_dir), KAM_ERP_URL=erp_url)
    if crm_url:
        env["KAM_CRM_URL"] = crm_url
    return env


def _epoch(text: str) -> float:
    """An event_logs timestamp (naive UTC text) as epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _phase_of(con: sqlite3.Connection, step_key: str) -> str:
    """The phase of a step: by its key, else by the assets it materialized or checked."""
    if step_key in STEP_PHASES:
        return STEP_PHASES[step_key]
    rows = con.execute(
        "select dagster_event_type, asset_key from event_logs where step_key = ? "
        "and asset_key is not null",
        [step_key],
    ).fetchall()
    for kind, key in rows:
        first = re.findall(r'"([^"]+)"', key or "")[:1]
        if not first:
            continue
        if first[0] == "marts":
            return "mart checks" if kind == "ASSET_CHECK_EVALUATION" else "dbt build"
        if first[0] in ("erp", "crm") and kind == "ASSET_MATERIALIZATION":
            return "extract"
        if first[0] in _GROUP_PHASES:
            return _GROUP_PHASES[first[0]]
    return f"other: {step_key}"


def read_steps(dagster_home: Path, run_id: str) -> tuple[float | None, list[Step]]:
    """(time of the run's first event, its steps) from the instance's event log."""
    path = dagster_home / "history" / "runs" / f"{run_id}.db"
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        [(first,)] = con.execute("select min(timestamp) from event_logs").fetchall()
        rows = con.execute(
            "select step_key, dagster_event_type, timestamp from event_logs "
            "where dagster_event_type in ('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE', "
            "'STEP_SKIPPED') and step_key is not null order by id"
        ).fetchall()
        starts: dict[str, float] = {}
        steps = []
        for key, kind, stamp in rows:
            if kind == "STEP_START":
                starts[key] = _epoch(stamp)
            elif key in starts:
                status = kind.removeprefix("STEP_").lower()
                steps.append(Step(key, _phase_of(con, key), starts[key], _epoch(stamp), status))
    finally:
        con.close()
    return (_epoch(first) if first else None), steps


def _dbt_elapsed(data_dir: Path) -> float | None:
    """dbt's own elapsed time of the run's build (its run_results.json)."""
    import json

    path = data_dir / "dbt" / "target" / "run_results.json"
    try:
        return float(json.loads(path.read_text())["elapsed_time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def kam_executable() -> str:
    return str(Path(sys.executable).with_name("kam"))


def run_kam(data_dir: Path, sources: Mapping[str, str | None], as_of: date) -> KamRun:
    """``kam run --as-of D`` as a user runs it; its wall time, steps and peak memory."""
    erp = sources["erp"]
    assert erp, "the ERP source is required"
    env = kam_env(data_dir, erp, sources.get("crm"))
    log = data_dir.parent / f"kam_run_{as_of.isoformat()}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        spawned = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [kam_executable(), "run", "--as-of", as_of.isoformat()],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(data_dir),
        )
        sampler = TreeRssSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    found = _RUN_ID.search(text)
    run = KamRun(
        as_of=as_of.isoformat(),
        exit_code=proc.returncode,
        wall_seconds=wall,
        spawned_at=spawned,
        run_id=found.group(1) if found else None,
        max_process_rss_mb=usage.ru_maxrss / 1024,
        tree_rss_mb=sampler.peak_kb / 1024,
        dbt_elapsed_seconds=_dbt_elapsed(data_dir),
        parsed_dbt_project="parsing it again" in text or "parsing the dbt project" in text,
        output_tail="\n".join(text.splitlines()[-15:]),
    )
    if run.run_id:
        run.first_event_at, run.steps = read_steps(data_dir / "dagster_home", run.run_id)
    return run


def phase_seconds(run: KamRun) -> dict[str, float]:
    """Wall time of the run by phase: start-up, each step's phase, and outside steps."""
    seconds: dict[str, float] = {}
    if not run.steps:
        return {"start-up": run.wall_seconds}
    first = min(s.start for s in run.steps)
    last = max(s.end for s in run.steps)
    seconds["start-up"] = first - run.spawned_at
    if run.first_event_at is not None:  # before Dagster recorded the run, and after
        seconds["start-up: before the run is recorded"] = run.first_event_at - run.spawned_at
        seconds["start-up: run recorded -> first step"] = first - run.first_event_at
    for step in run.steps:
        seconds[step.phase] = seconds.get(step.phase, 0.0) + step.end - step.start
    in_steps = sum(s.end - s.start for s in run.steps)
    seconds["outside steps (between, after)"] = max(0.0, (last - first) - in_steps) + max(
        0.0, run.spawned_at + run.wall_seconds - last
    )
    return seconds
