"""The pipeline benchmark: generate the demo sources once, time every phase, report."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pipelines.benchmark.data import DEFAULT_PG_URL
from pipelines.benchmark.phases import (
    create_pg_database,
    dbt_project_dir,
    run_child,
)
from pipelines.publish.pg import drop_database

DEMO_SEED = 42


PHASES = (
    "generate",
    "extract",
    "quarantine",
    "raw checks",
    "dbt build",
    "mart checks",
    "publish duckdb",
    "publish postgres",
)


def default_cache_dir() -> Path:
    """``$KAM_DATA_DIR/bench`` (``./data/bench`` by default)."""
    from pipelines.settings import Settings

    return Settings.from_env().data_dir / "bench"


def default_pg_url() -> str:
    return os.environ.get("KAM_TEST_PG_URL") or os.environ.get("KAM_BENCH_PG_URL") or DEFAULT_PG_URL


def _machine() -> dict:
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return {"cores": os.cpu_count() or 0, "memory_gb": round(mem_gb, 1)}


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def ensure_demo_sources(
    clients: int, years: int, cache_dir: Path, seed: int = DEMO_SEED
) -> tuple[Path, dict, bool]:
    """Generate the demo sources once per (clients, years, seed); returns (folder, figures,
    reused). The figures of a reused folder are those of its original generation."""
    folder = Path(cache_dir) / f"demo_c{clients}_y{years}_s{seed}"
    ready = folder / "READY.json"
    if ready.exists() and (folder / "erp.sqlite").exists() and (folder / "crm.sqlite").exists():
        return folder, json.loads(ready.read_text()), True
    shutil.rmtree(folder, ignore_errors=True)
    figures = run_child(
        "generate", {"out": str(folder), "clients": clients, "years": years, "seed": seed}
    )
    ready.write_text(json.dumps(figures))
    return folder, figures, False


def _phase(name: str, figures: dict, note: str = "") -> dict:
    rows = figures.get("rows")
    seconds = figures["seconds"]
    return {
        "phase": name,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds if rows is not None and seconds > 0 else None,
        "peak_rss_mb": figures.get("peak_rss_mb"),
        "note": note,
        "details": figures,
    }


def _checks_note(figures: dict) -> str:
    note = f"{figures['checks']} checks, {figures['expectations']} expectations"
    if figures["skipped"]:
        note += f", {figures['skipped']} skipped"
    if figures["failed"]:
        note += f", {len(figures['failed'])} FAILED"
    return note


class PhaseFailed(RuntimeError):
    """A phase failed so that the next ones cannot run (e.g. dbt built no marts)."""


def _run_phases(report: dict, folder: Path, run_dir: Path, pg_url: str | None, say) -> None:
    phases: list[dict] = report["phases"]
    problems: list[str] = report["problems"]
    base = {
        "work_db": str(run_dir / "work" / "kam_work.duckdb"),
        "as_of": report["as_of"],
        "has_crm": True,  # the benchmark sources have a CRM
    }

    def add(name: str, figures: dict, note: str) -> None:
        phases.append(_phase(name, figures, note))
        say(_phase_line(phases[-1]))

    ext = run_child(
        "extract",
        {
            **base,
            "erp_url": f"sqlite:///{folder / 'erp.sqlite'}",
            "crm_url": f"sqlite:///{folder / 'crm.sqlite'}",
            "chunk_rows": report["chunk_rows"],
        },
    )
    add("extract", ext, f"work DB {ext['work_db_mb']:.0f} MB")

    quarantine = run_child("quarantine", base)
    add(
        "quarantine",
        quarantine,
        f"{quarantine['quarantined']:,} rows quarantined, {quarantine['gates']} gates",
    )
    problems += [f"gate failed: {f}" for f in quarantine["failed"]]

    raw = run_child("checks", {**base, "stage": "raw"})
    add("raw checks", raw, _checks_note(raw))
    problems += [f"raw check failed: {f}" for f in raw["failed"]]

    dbt_payload = {
        **base,
        "run_dir": str(run_dir),
        "project_dir": str(dbt_project_dir()),
    }
    dbt = run_child("dbt", dbt_payload)
    dbt["rows"] = ext["rows"]  # the raw rows the build reads
    mart_rows = sum(dbt["mart_rows"].values())
    add("dbt build", dbt, f"{dbt['models']} models, {dbt['tests']} tests; {mart_rows:,} mart rows")
    if dbt["exit_code"] != 0:
        kept = Path(report["sources"]).parent / "last_dbt_build.log"
        shutil.copyfile(dbt["log"], kept)
        raise PhaseFailed(
            f"dbt build exited {dbt['exit_code']}; failed: {', '.join(dbt['failed_nodes'])} "
            f"(log: {kept})"
        )

    mart = run_child("checks", {**base, "stage": "mart"})
    add("mart checks", mart, _checks_note(mart))
    problems += [f"mart check failed: {f}" for f in mart["failed"]]
    if not mart["checks"]:
        problems.append("no mart check applied (no marts?)")

    warehouse = run_dir / "warehouse" / "kam.duckdb"
    duck = run_child("publish_duckdb", {**base, "warehouse": str(warehouse)})
    add("publish duckdb", duck, f"{duck['tables']} tables, file {duck['file_mb']:.1f} MB")

    if pg_url:
        name, url = create_pg_database(pg_url)
        try:
            pg = run_child("publish_postgres", {**base, "pg_url": url})
        finally:
            drop_database(pg_url, name)
        add("publish postgres", pg, f"{pg['tables']} tables")


def bench_pipeline(
    clients: int = 20_000,
    years: int = 3,
    cache_dir: Path | None = None,
    pg_url: str | None = None,
    chunk_rows: int = 50_000,
    seed: int = DEMO_SEED,
    keep: bool = False,
    echo=None,
) -> dict:
    """Generate (or reuse) the demo sources, then time each phase of the daily pipeline
    in its own process: extract, quarantine (+ gates), raw checks, dbt build, mart checks,
    publish to DuckDB and (unless ``pg_url`` is None) to a fresh PostgreSQL database.
    Failed checks and a failed phase go to ``report["problems"]``.

    ``echo`` (e.g. ``print``) receives a line as each phase ends.
    """
    say = echo or (lambda _line: None)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "clients": clients,
        "years": years,
        "seed": seed,
        "chunk_rows": chunk_rows,
        "machine": _machine(),
        "loadavg_start": _loadavg(),
        "phases": [],
        "problems": [],
    }
    started = time.perf_counter()
    folder, gen, reused = ensure_demo_sources(clients, years, cache_dir, seed)
    as_of = gen["end_date"]
    report.update(as_of=as_of, sources=str(folder), source_rows=gen["row_counts"])
    report["phases"].append(_phase("generate", gen, "reused from cache" if reused else "SQLite"))
    say(_phase_line(report["phases"][-1]))

    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=cache_dir))
    try:
        _run_phases(report, folder, run_dir, pg_url, say)
    except Exception as exc:  # figures so far are still reported
        report["problems"].append(f"stopped: {type(exc).__name__}: {exc}")
    finally:
        if keep:
            report["run_dir"] = str(run_dir)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    report["wall_seconds"] = time.perf_counter() - started
    report["loadavg_end"] = _loadavg()
    return report


def _fmt_rows(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def _phase_line(ph: dict) -> str:
    rate = f"{ph['rows_per_s']:,.0f}" if ph["rows_per_s"] is not None else "-"
    rss = f"{ph['peak_rss_mb']:.0f}" if ph["peak_rss_mb"] is not None else "-"
    return (
        f"  {ph['phase']:<17}{_fmt_rows(ph['rows']):>13}{ph['seconds']:>10.1f}{rate:>12}"
        f"{rss:>8}  {ph['note']}"
    )


def format_pipeline(r: dict) -> str:
    m = r["machine"]
    load = lambda xs: " ".join(f"{x:.2f}" for x in xs) or "?"  # noqa: E731
    lines = [
        f"pipeline benchmark: {r['clients']:,} clients x {r['years']} years (seed {r['seed']}), "
        f"as-of {r['as_of']}, chunk_rows {r['chunk_rows']:,}",
        f"machine: {m['cores']} cores, {m['memory_gb']} GB RAM; load average "
        f"{load(r['loadavg_start'])} at start, {load(r['loadavg_end'])} at end",
        f"  {'phase':<17}{'rows':>13}{'seconds':>10}{'rows/s':>12}{'RSS MB':>8}  note",
    ]
    lines += [_phase_line(ph) for ph in r["phases"]]
    timed = [ph for ph in r["phases"] if ph["phase"] != "generate"]
    lines.append(
        f"  {'pipeline total':<17}{'':>13}{sum(ph['seconds'] for ph in timed):>10.1f}"
        f"{'':>12}{max((ph['peak_rss_mb'] or 0 for ph in timed), default=0):>8.0f}  "
        "extract..publish, excluding generate and process start-up"
    )
    by_name = {ph["phase"]: ph for ph in r["phases"]}
    dbt = by_name.get("dbt build", {}).get("details")
    if dbt:
        lines.append(
            f"dbt build: {dbt['seconds']:.1f} s wall (dbt's own elapsed "
            f"{dbt['elapsed_seconds'] or 0:.1f} s); {dbt['models']} models "
            f"{dbt['models_seconds']:.1f} s, {dbt['tests']} tests {dbt['tests_seconds']:.1f} s "
            "(node times summed over threads)"
        )
        lines.append(
            "  slowest models: "
            + ", ".join(f"{x['node']} {x['seconds']:.1f} s" for x in dbt["slowest_models"])
        )
    for name in ("raw checks", "mart checks"):
        det = by_name.get(name, {}).get("details")
        if det and det.get("slowest"):
            lines.append(
                f"{name}, slowest: "
                + ", ".join(f"{x['check']} {x['seconds']:.1f} s" for x in det["slowest"])
            )
    rows = r.get("source_rows") or {}
    if rows:
        lines.append("sources: " + ", ".join(f"{table} {n:,}" for table, n in rows.items()))
    for problem in r["problems"]:
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)
