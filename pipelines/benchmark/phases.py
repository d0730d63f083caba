"""The phases of the pipeline benchmark, each run in a fresh child process.

Every child returns its figures as JSON: seconds (measured inside the child), rows and
peak_rss_mb. PostgreSQL publishes go to a fresh database, created and dropped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pipelines.benchmark.extract_bench import peak_rss_mb
from pipelines.publish.pg import create_database
from pipelines.run_params import RunParameters, dbt_build_args, parse_as_of
from pipelines.settings import Settings


def run_parameters(p: dict) -> RunParameters:
    """The run parameters of a phase (each phase is its own process: its boundary)."""
    settings = Settings.from_env()
    return RunParameters(
        as_of=parse_as_of(p["as_of"]),
        today=RunParameters.derive(parse_as_of(p["as_of"]), settings).today,
        has_crm=bool(p["has_crm"]),
        history_days=settings.history_days,
    )


def dbt_project_dir() -> Path:
    """The repository's dbt project (``dbt/`` beside ``pipelines/``)."""
    return Path(__file__).resolve().parents[2] / "dbt"


def run_child(kind: str, payload: dict) -> dict:
    """Run one phase in a fresh Python process; its figures come back as JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.benchmark", "_child", kind, json.dumps(payload)],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child_generate(p: dict) -> dict:
    from datetime import date

    from pipelines.generator import generate_demo

    started = time.perf_counter()
    kwargs: dict[str, Any] = {"clients": p["clients"], "years": p["years"], "seed": p["seed"]}
    if p.get("end_date"):
        kwargs["end_date"] = date.fromisoformat(p["end_date"])
    record = generate_demo(Path(p["out"]), **kwargs)
    seconds = time.perf_counter() - started
    counts = record.get("row_counts") or {}
    return {
        "seconds": seconds,
        "rows": sum(counts.values()),
        "peak_rss_mb": peak_rss_mb(),
        "end_date": str(record["end_date"]),
        "row_counts": counts,
    }


def _child_extract_all(p: dict) -> dict:
    from pipelines.extract.raw_loader import extract_all

    started = time.perf_counter()
    loads = extract_all(Path(p["work_db"]), p["erp_url"], p["crm_url"], "bench", p["chunk_rows"])
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(x.rows_read for x in loads),
        "peak_rss_mb": peak_rss_mb(),
        "work_db_mb": Path(p["work_db"]).stat().st_size / 2**20,
        "tables": {f"{x.system}.{x.table}": x.rows_read for x in loads},
    }


def _child_quarantine(p: dict) -> dict:
    """The quarantine of bad raw rows (valid_* views that dbt reads) and the batch gates."""
    from contextlib import closing

    import duckdb

    from pipelines.gate.batch_gates import evaluate_gates
    from pipelines.gate.quarantine import apply_quarantine
    from pipelines.gate.row_rules import row_rules
    from pipelines.settings import Settings

    settings = Settings.from_env()
    started = time.perf_counter()
    with closing(duckdb.connect(p["work_db"])) as con:
        params = run_parameters(p)
        summary = apply_quarantine(
            con,
            "bench",
            params.as_of,
            today=params.today,
            rules=row_rules(max_line_amount=settings.max_line_amount),
        )
        gates = evaluate_gates(
            con,
            "bench",
            quarantine_max_share=settings.quarantine_max_share,
            row_drop_max_share=settings.row_drop_max_share,
        )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(c.table_rows for c in summary.totals()),
        "peak_rss_mb": peak_rss_mb(),
        "quarantined": summary.quarantined_rows,
        "gates": len(gates),
        "failed": [f"{g.system}.{g.table} {g.gate}: {g.message}" for g in gates if not g.passed],
    }


def _mart_relations(work_db: str) -> dict[str, list[str]]:
    import duckdb

    con = duckdb.connect(work_db, read_only=True)
    try:
        rows = con.execute(
            "select table_schema || '.' || table_name, column_name from information_schema.columns "
            "where table_schema = 'marts'"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for relation, column in rows:
        out.setdefault(relation, []).append(column)
    return out


def _child_checks(p: dict) -> dict:
    from pipelines.quality.checks import applicable_checks, check_context
    from pipelines.quality.mart_checks import MART_CHECKS
    from pipelines.quality.raw_checks import raw_checks
    from pipelines.quality.runner import run_checks
    from pipelines.settings import Settings

    ctx = check_context(Settings.from_env(), run_parameters(p))
    started = time.perf_counter()
    if p["stage"] == "mart":
        checks = applicable_checks(MART_CHECKS, _mart_relations(p["work_db"]))
    else:
        checks = raw_checks()
    outcomes = run_checks(p["work_db"], checks, ctx)
    seconds = time.perf_counter() - started
    slowest = sorted(outcomes, key=lambda co: co[1].seconds, reverse=True)[:3]
    return {
        "seconds": seconds,
        "rows": sum(o.rows for _, o in outcomes),
        "peak_rss_mb": peak_rss_mb(),
        "checks": len(outcomes),
        "expectations": sum(o.evaluated for _, o in outcomes),
        "skipped": sum(1 for _, o in outcomes if o.skipped),
        "failed": [o.summary() for _, o in outcomes if not o.success],
        "slowest": [{"check": o.name, "seconds": o.seconds, "rows": o.rows} for _, o in slowest],
    }


def _dbt_results(run_results: Path) -> dict:
    """Per-node figures of dbt's run_results.json: slowest models, tests' total."""
    data = json.loads(run_results.read_text())
    models, tests, statuses = [], [], {}
    for r in data.get("results", []):
        kind = r["unique_id"].split(".", 1)[0]
        statuses[f"{kind}:{r['status']}"] = statuses.get(f"{kind}:{r['status']}", 0) + 1
        entry = {"node": r["unique_id"].split(".")[-1], "seconds": r.get("execution_time") or 0.0}
        if kind == "model":
            models.append(entry)
        elif kind == "test":
            tests.append(entry)
    models.sort(key=lambda m: m["seconds"], reverse=True)
    return {
        "elapsed_seconds": data.get("elapsed_time"),
        "models": len(models),
        "models_seconds": sum(m["seconds"] for m in models),
        "slowest_models": models[:5],
        "tests": len(tests),
        "tests_seconds": sum(t["seconds"] for t in tests),
        "statuses": statuses,
        "failed_nodes": [
            r["unique_id"]
            for r in data.get("results", [])
            if r["status"] in ("error", "fail", "runtime error")
        ],
    }


def _child_dbt(p: dict) -> dict:
    """Run ``dbt build`` as a subprocess; its peak RSS comes from ``wait4``.

    This wrapper imports nothing heavy before starting dbt, so the figure is dbt's own.
    """
    project = p["project_dir"]
    run_dir = Path(p["run_dir"])
    cmd = [
        str(Path(sys.executable).parent / "dbt"),
        *dbt_build_args(run_parameters(p)),
        "--project-dir",
        project,
        "--profiles-dir",
        project,
    ]
    env = os.environ.copy()
    env.update(
        KAM_WORK_DB=p["work_db"],
        DBT_TARGET_PATH=str(run_dir / "dbt_target"),  # never the shared dbt/target
        DBT_LOG_PATH=str(run_dir / "dbt_logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    log_file = run_dir / "dbt_build.log"
    started = time.perf_counter()
    with log_file.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    run_results = run_dir / "dbt_target" / "run_results.json"
    if not run_results.exists():
        tail = log_file.read_text()[-4000:]
        raise RuntimeError(f"dbt build wrote no run_results.json (exit {proc.returncode}):\n{tail}")
    result = {
        "seconds": seconds,
        "peak_rss_mb": maxrss,
        "exit_code": proc.returncode,
        "command": " ".join(cmd[1:]),
        "log": str(log_file),
        **_dbt_results(run_results),
    }
    import duckdb

    con = duckdb.connect(p["work_db"], read_only=True)
    try:
        tables = con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' and table_type = 'BASE TABLE'"
        ).fetchall()
        result["mart_rows"] = {
            name: con.execute(f'select count(*) from marts."{name}"').fetchall()[0][0]
            for (name,) in tables
        }
    finally:
        con.close()
    return result


def _child_publish_duckdb(p: dict) -> dict:
    from pipelines.publish.duckdb_file import publish_duckdb

    warehouse = Path(p["warehouse"])
    started = time.perf_counter()
    result = publish_duckdb(Path(p["work_db"]), warehouse, "bench", parse_as_of(p["as_of"]))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(result.tables.values()),
        "tables": len(result.tables),
        "peak_rss_mb": peak_rss_mb(),
        "file_mb": warehouse.stat().st_size / 2**20,
    }


def _child_publish_postgres(p: dict) -> dict:
    from pipelines.publish.postgres import publish_postgres

    started = time.perf_counter()
    result = publish_postgres(Path(p["work_db"]), p["pg_url"], "bench", parse_as_of(p["as_of"]))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(result.tables.values()),
        "tables": len(result.tables),
        "peak_rss_mb": peak_rss_mb(),
    }


CHILDREN = {
    "generate": _child_generate,
    "extract": _child_extract_all,
    "quarantine": _child_quarantine,
    "checks": _child_checks,
    "dbt": _child_dbt,
    "publish_duckdb": _child_publish_duckdb,
    "publish_postgres": _child_publish_postgres,
}


def create_pg_database(admin_url: str) -> tuple[str, str]:
    """Create an empty database ``kam_bench_pub_<random>``; returns (name, its URL)."""
    import uuid

    name = f"kam_bench_pub_{uuid.uuid4().hex[:10]}"
    return name, create_database(admin_url, name)
