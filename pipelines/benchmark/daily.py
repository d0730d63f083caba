"""``kam bench daily``: the daily run beside its floor, phase by phase, with the ratio.

For one data set (the demo sources ``kam demo`` generates, or a larger generated one):

1. **first run**: a real ``kam run --as-of D`` (subprocess, fresh ``KAM_DATA_DIR``) and the
   floor of the same work (:mod:`pipelines.benchmark.floor`, a fresh process);
2. **next day's run**: one day of activity added to the sources (the orders, lines, invoices
   and interactions of the same weekday a week earlier, copied with new keys onto D + 1),
   then ``kam run --as-of D+1`` on the same data dir (incremental extraction, the history
   kept) beside the floor of D + 1 from nothing, compiled afresh (a floor has no state to
   reuse, so the pipeline may beat it here).

Each floor's published marts must have the row counts of the pipeline's published marts
(the floor is the same work); a difference is a problem of the report, except in an
incremental model after the next day's run (the pipeline keeps earlier days there).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipelines.benchmark.floor import mart_counts
from pipelines.benchmark.floor_plan import make_plan, not_in_floor
from pipelines.benchmark.kam_run import KamRun, phase_seconds, run_kam
from pipelines.benchmark.pipeline import (
    DEMO_SEED,
    _loadavg,
    _machine,
    default_cache_dir,
    ensure_demo_sources,
)

#: the phases of the table, in the pipeline's order (sub-phases are indented under them)
PHASES = ("start-up", "extract", "gates", "raw checks", "dbt build", "mart checks", "publish")
OUTSIDE = "outside steps (between, after)"
#: issue 12 targets (seconds, GB): the demo's daily run, 20,000 clients x 3 years
TARGETS = {
    "demo_ratio": 3.0,
    "demo_seconds": 25.0,
    "large_first_seconds": 120.0,
    "large_next_seconds": 30.0,
    "large_rss_gb": 2.0,
}

Say = Callable[[str], None]


# -- sources ----------------------------------------------------------------------------------


def sqlite_sources(folder: Path) -> dict[str, str]:
    return {
        "erp": f"sqlite:///{folder / 'erp.sqlite'}",
        "crm": f"sqlite:///{folder / 'crm.sqlite'}",
    }


def add_a_day(folder: Path, day: date) -> dict[str, int]:
    """Add ``day``'s activity to SQLite sources: the rows of a week earlier (same weekday,
    so the revenue band holds), copied with new keys and dates moved by 7 days."""
    week, src = "'+7 days'", (day - timedelta(days=7)).isoformat()
    stamp = f"datetime(updated_at, {week}) || '.000000'"
    added: dict[str, int] = {}
    erp = sqlite3.connect(folder / "erp.sqlite")
    try:
        with erp:
            added["orders"] = erp.execute(
                "insert into orders select order_id || '-n', client_id, "
                f"date(order_date, {week}), status, {stamp} from orders where order_date = ?",
                [src],
            ).rowcount
            added["order_lines"] = erp.execute(
                "insert into order_lines select l.order_id || '-n', l.line_no, l.product_id, "
                "l.quantity, l.unit_price, l.unit_cost, l.discount from order_lines l "
                "join orders o on o.order_id = l.order_id where o.order_date = ?",
                [src],
            ).rowcount
            # the invoices of the copied orders (an invoice must reference an existing order)
            added["invoices"] = erp.execute(
                "insert into invoices select i.invoice_id || '-n', i.client_id, "
                f"i.order_id || '-n', date(i.issued_date, {week}), date(i.due_date, {week}), "
                f"i.amount, null, datetime(i.updated_at, {week}) || '.000000' from invoices i "
                "join orders o on o.order_id = i.order_id where o.order_date = ?",
                [src],
            ).rowcount
    finally:
        erp.close()
    crm = sqlite3.connect(folder / "crm.sqlite")
    try:
        with crm:
            added["interactions"] = crm.execute(
                "insert into interactions select interaction_id || '-n', client_id, contact_id, "
                f"manager_id, datetime(occurred_at, {week}) || '.000000', channel, kind, "
                f"satisfaction, null, {stamp} from interactions where date(occurred_at) = ?",
                [src],
            ).rowcount
    finally:
        crm.close()
    return added


# -- the floor, in its own process ------------------------------------------------------------


def run_floor_process(plan_path: Path) -> dict[str, Any]:
    """The floor in a fresh Python process: its figures, start-up and peak RSS."""
    cmd = [sys.executable, "-m", "pipelines.benchmark", "_floor", str(plan_path)]
    out_path = plan_path.with_name("floor_result.json")
    spawned = time.time()
    started = time.perf_counter()
    with open(plan_path.with_name("floor.log"), "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0 or not out_path.exists():
        tail = plan_path.with_name("floor.log").read_text()[-4000:]
        raise RuntimeError(f"the floor failed:\n{tail}")
    result = json.loads(out_path.read_text())
    result["seconds"]["start-up"] = result["started_at"] - spawned
    result.update(wall_seconds=wall, max_process_rss_mb=usage.ru_maxrss / 1024)
    return result


# -- one day: the pipeline and its floor ------------------------------------------------------


def _compare(
    pipeline: Mapping[str, int], floor: Mapping[str, int], incremental: set[str], next_day: bool
) -> list[str]:
    """Differences of the marts' row counts that mean the floor did other work."""
    problems = []
    for name in sorted(set(pipeline) | set(floor)):
        if pipeline.get(name) == floor.get(name):
            continue
        if next_day and name in incremental:
            continue  # the pipeline keeps earlier days there (see _history_marts)
        problems.append(
            f"marts.{name}: pipeline {pipeline.get(name)} rows, floor {floor.get(name)}"
        )
    return problems


def _history_marts(plan: Mapping[str, Any]) -> set[str]:
    """Incremental models and every model built on one: after the next day's run the
    pipeline's hold its earlier days, a floor from nothing cannot."""
    steps = {s["id"]: s for s in plan["dbt"]["steps"]}
    history = {u for u, s in steps.items() if s.get("materialized") == "incremental"}
    for uid, step in steps.items():  # dependency order: parents come first
        if history & set(step.get("parents") or []):
            history.add(uid)
    return {steps[u]["relation"].split(".")[-1].strip('"') for u in history}


def _run_summary(run: KamRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "exit_code": run.exit_code,
        "wall_seconds": run.wall_seconds,
        "max_process_rss_mb": run.max_process_rss_mb,
        "tree_rss_mb": run.tree_rss_mb,
        "dbt_elapsed_seconds": run.dbt_elapsed_seconds,
        "parsed_dbt_project": run.parsed_dbt_project,
        "steps": [s.__dict__ for s in run.steps],
    }


def bench_day(
    label: str,
    data_dir: Path,
    sources: Mapping[str, str | None],
    as_of: date,
    floor_dir: Path,
    next_day: bool,
) -> dict[str, Any]:
    """The pipeline's run and the floor of one as-of date; phases side by side."""
    load_before = _loadavg()
    run = run_kam(data_dir, sources, as_of)
    load_mid = _loadavg()
    day: dict[str, Any] = {"label": label, "as_of": as_of.isoformat(), "problems": []}
    day["pipeline"] = _run_summary(run)
    if run.exit_code != 0:
        day["problems"].append(f"kam run exited {run.exit_code}:\n{run.output_tail}")
        day.update(loadavg=[load_before, load_mid])
        return day
    # first run: the SQL the pipeline's dbt build ran (the project may change while this
    # runs); next day: the pipeline's SQL reads its earlier state (incremental models and
    # what reads them), so the floor from nothing compiles the project itself
    manifest = None if next_day else data_dir / "dbt" / "target" / "manifest.json"
    plan = make_plan(sources, as_of, floor_dir, manifest)
    floor = run_floor_process(floor_dir / "plan.json")
    day["loadavg"] = [load_before, load_mid, _loadavg()]
    day["floor"] = {
        "wall_seconds": floor["wall_seconds"],
        "max_process_rss_mb": floor["max_process_rss_mb"],
        "compile_seconds": plan["compile_seconds"],
        "found": floor["found"],
    }
    day["pipeline_seconds"], day["floor_seconds"] = phase_seconds(run), floor["seconds"]
    pipeline_marts = mart_counts(data_dir / "warehouse" / "kam.duckdb")
    day["marts"] = {"pipeline": pipeline_marts, "floor": floor["marts"]}
    day["marts_equal"] = pipeline_marts == floor["marts"]
    history = _history_marts(plan)
    day["history_marts"] = sorted(history)
    day["problems"] += _compare(pipeline_marts, floor["marts"], history, next_day)
    day["problems"] += [f"floor: no SQL for check {n}" for n in not_in_floor(plan)]
    day["problems"] += _floor_failures(floor["found"])
    return day


def _floor_failures(found: Mapping[str, Any]) -> list[str]:
    """Checks, gates or dbt tests that failed in the floor (the pipeline passed them)."""
    problems = [f"floor gate failed: {g}" for g in found.get("gates") or []]
    for stage in ("raw checks", "mart checks"):
        problems += [f"floor {stage} failed: {n}" for n in found[stage]["failed"]]
    problems += [f"floor dbt test failed: {t}" for t in found["dbt build"]["fail"]]
    return problems


def bench_daily(
    clients: int = 600,
    years: int = 3,
    cache_dir: Path | None = None,
    seed: int = DEMO_SEED,
    next_day: bool = True,
    keep: bool = False,
    echo: Say | None = None,
) -> dict[str, Any]:
    """The first run and (``next_day``) the next day's run, each beside its floor."""
    say = echo or (lambda _line: None)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "clients": clients,
        "years": years,
        "seed": seed,
        "machine": _machine(),
        "days": [],
        "problems": [],
    }
    folder, gen, reused = ensure_demo_sources(clients, years, cache_dir, seed)
    report.update(source_rows=gen["row_counts"], sources_reused=reused)
    run_dir = Path(tempfile.mkdtemp(prefix="daily_", dir=cache_dir))
    try:
        _days(report, folder, run_dir, date.fromisoformat(gen["end_date"]), next_day, say)
    except Exception as exc:  # the figures so far are still reported
        report["problems"].append(f"stopped: {type(exc).__name__}: {exc}")
    finally:
        if keep:
            report["run_dir"] = str(run_dir)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    report["stopped"] = list(report["problems"])
    for day in report["days"]:
        report["problems"] += [f"{day['label']}: {p}" for p in day["problems"]]
    report["targets"] = target_lines(report)
    return report


def _days(report: dict, folder: Path, run_dir: Path, as_of: date, next_day: bool, say: Say):
    """Copy the sources (the next day is added to the copy), then run each day."""
    src = run_dir / "sources"
    src.mkdir()
    for name in ("erp.sqlite", "crm.sqlite"):
        shutil.copyfile(folder / name, src / name)
    data_dir = run_dir / "data"
    say(f"first run: kam run --as-of {as_of}, then its floor ...")
    first = bench_day("first run", data_dir, sqlite_sources(src), as_of, run_dir / "floor_1", False)
    report["days"].append(first)
    say(format_day(first, report["machine"]))
    if not next_day or first["problems"]:
        return
    report["added_next_day"] = add_a_day(src, as_of + timedelta(days=1))
    say(f"next day's run: kam run --as-of {as_of + timedelta(days=1)}, then its floor ...")
    second = bench_day(
        "next day",
        data_dir,
        sqlite_sources(src),
        as_of + timedelta(days=1),
        run_dir / "floor_2",
        True,
    )
    report["days"].append(second)
    say(format_day(second, report["machine"]))


# -- the report -------------------------------------------------------------------------------


def _ratio(pipeline: float | None, floor: float | None) -> str:
    if pipeline is None or not floor:
        return "-"
    return f"{pipeline / floor:.1f}x"


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def phase_rows(day: Mapping[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(phase, pipeline s, floor s): the phases, their sub-phases, outside steps, total."""
    pipe, floor = day["pipeline_seconds"], day["floor_seconds"]
    rows: list[tuple[str, float | None, float | None]] = []
    for phase in PHASES:
        rows.append((phase, pipe.get(phase), floor.get(phase)))
        for sub in sorted({k for k in (*pipe, *floor) if k.startswith(phase + ": ")}):
            rows.append(("  " + sub[len(phase) + 2 :], pipe.get(sub), floor.get(sub)))
    rows += [(k, v, None) for k, v in pipe.items() if k.startswith("other: ")]
    rows.append((OUTSIDE, pipe.get(OUTSIDE), None))
    rows.append(("total (wall)", day["pipeline"]["wall_seconds"], day["floor"]["wall_seconds"]))
    return rows


def ratios(day: Mapping[str, Any]) -> dict[str, float | None]:
    """pipeline / floor per phase and for the total (None where the floor has no figure)."""
    return {
        name.strip(): (p / f if p is not None and f else None) for name, p, f in phase_rows(day)
    }


def format_day(day: Mapping[str, Any], machine: Mapping[str, Any]) -> str:
    lines = [f"{day['label']} (as-of {day['as_of']})"]
    if "floor" not in day:
        return "\n".join([*lines, *("  PROBLEM: " + p for p in day["problems"])])
    load = " -> ".join(" ".join(f"{x:.2f}" for x in xs) for xs in day["loadavg"])
    lines.append(
        f"  load average (1/5/15 min) before -> after kam run -> after floor: {load}; "
        f"{machine['cores']} cores"
    )
    lines.append(f"  {'phase':<34}{'pipeline s':>11}{'floor s':>10}{'ratio':>8}")
    for name, p, f in phase_rows(day):
        lines.append(f"  {name:<34}{_sec(p):>11}{_sec(f):>10}{_ratio(p, f):>8}")
    pipe, flo = day["pipeline"], day["floor"]
    lines.append(
        f"  peak RSS: kam run {pipe['max_process_rss_mb']:.0f} MB largest process, "
        f"{pipe['tree_rss_mb']:.0f} MB process tree (sampled); "
        f"floor {flo['max_process_rss_mb']:.0f} MB"
    )
    if pipe["dbt_elapsed_seconds"] is not None:
        lines.append(
            f"  dbt's own elapsed time in the dbt step: {pipe['dbt_elapsed_seconds']:.2f} s"
            + (
                "; start-up parsed the dbt project (it changed)"
                if pipe["parsed_dbt_project"]
                else ""
            )
        )
    marts = day["marts"]["floor"]
    same = "equal" if day["marts_equal"] else "DIFFERENT"
    lines.append(
        f"  mart rows, floor vs pipeline: {same}: "
        + ", ".join(f"{k} {v:,}" for k, v in marts.items())
    )
    if not day["marts_equal"]:
        if day.get("history_marts"):
            lines.append(
                "  history marts (incremental or built on one; the pipeline keeps "
                "earlier days): " + ", ".join(day["history_marts"])
            )
        lines.append(
            "  pipeline: " + ", ".join(f"{k} {v:,}" for k, v in day["marts"]["pipeline"].items())
        )
    lines += ["  PROBLEM: " + p for p in day["problems"]]
    return "\n".join(lines)


def format_daily(report: Mapping[str, Any], *, with_days: bool = True) -> str:
    """The report; ``with_days=False`` leaves out the days' tables (already printed as each
    day ended: `kam bench` prints each table once)."""
    m = report["machine"]
    rows = sum((report.get("source_rows") or {}).values())
    lines = [
        f"daily run vs floor: {report['clients']:,} clients x {report['years']} years "
        f"(seed {report['seed']}), {rows:,} source rows; {m['cores']} cores, {m['memory_gb']} GB",
    ]
    if report.get("added_next_day"):
        lines.append(
            "next day added: "
            + ", ".join(f"{k} {v:,}" for k, v in report["added_next_day"].items())
        )
    if with_days:
        lines += [format_day(d, m) for d in report["days"]]
    lines += report.get("targets") or []
    lines += [f"PROBLEM: {p}" for p in report.get("stopped") or []]
    return "\n".join(lines)


def _target(text: str, value: float, limit: float, unit: str) -> str:
    verdict = "met" if value <= limit else "NOT met"
    return f"target {text}: {value:.1f}{unit} (at most {limit:g}{unit}): {verdict}"


def target_lines(report: Mapping[str, Any]) -> list[str]:
    """Issue 12's targets that apply to this size (demo: 600 clients; large: 20,000+)."""
    days = {d["label"]: d for d in report["days"] if "floor" in d}
    lines = []
    if report["clients"] <= 600:
        for label, day in days.items():
            wall = day["pipeline"]["wall_seconds"]
            ratio = wall / day["floor"]["wall_seconds"]
            lines.append(
                _target(f"{label} within 3x of the floor", ratio, TARGETS["demo_ratio"], "x")
            )
            lines.append(_target(f"{label} under 25 s (idle)", wall, TARGETS["demo_seconds"], " s"))
    if report["clients"] >= 20_000:
        limits = {"first run": "large_first_seconds", "next day": "large_next_seconds"}
        for label, day in days.items():
            wall = day["pipeline"]["wall_seconds"]
            lines.append(_target(f"{label} wall", wall, TARGETS[limits[label]], " s"))
            rss = day["pipeline"]["tree_rss_mb"] / 1024
            lines.append(_target(f"{label} peak RSS (tree)", rss, TARGETS["large_rss_gb"], " GB"))
    return lines
