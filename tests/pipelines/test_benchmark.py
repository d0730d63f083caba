"""The benchmarks at a tiny size: every phase runs and reports positive figures; the floor
builds the marts the sources imply."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.benchmark.cli import main
from pipelines.benchmark.daily import PHASES as DAILY_PHASES
from pipelines.benchmark.daily import phase_rows, ratios, run_floor_process, sqlite_sources
from pipelines.benchmark.floor import mart_counts
from pipelines.benchmark.floor_plan import make_plan, not_in_floor
from pipelines.benchmark.kam_run import KamRun, kam_env, phase_seconds, read_steps
from pipelines.benchmark.pipeline import PHASES, ensure_demo_sources

CLIENTS, YEARS = 60, 2
# "  <phase>   <rows>   <seconds>   <rows/s>   <peak RSS MB>  <note>"
ROW = r"^  {phase}\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)\s+(\d+)  "


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _admin_url_or_none(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL server when reachable (KAM_REQUIRE_POSTGRES=1 makes absence fail)."""
    try:
        return request.getfixturevalue("postgres_admin_url")
    except pytest.skip.Exception:
        return None


def test_pipeline_benchmark_reports_every_phase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    cache = tmp_path / "bench"
    admin_url = _admin_url_or_none(request)
    pg_args = ["--pg-url", admin_url] if admin_url else ["--skip-postgres"]
    argv = ["pipeline", "--clients", str(CLIENTS), "--years", str(YEARS), "--cache-dir", str(cache)]

    code = main([*argv, *pg_args])
    out = capsys.readouterr().out

    assert code == 0, out
    assert "PROBLEM" not in out
    summary = out[out.index("pipeline benchmark:") :]
    expected = [p for p in PHASES if admin_url or p != "publish postgres"]
    figures = {}
    for phase in expected:
        match = re.search(ROW.format(phase=re.escape(phase)), summary, re.MULTILINE)
        assert match, f"no figures for phase {phase!r} in:\n{summary}"
        rows, seconds, rate, rss = (_number(g) for g in match.groups())
        assert rows > 0 and seconds > 0 and rate > 0 and rss > 0, match.group(0)
        figures[phase] = rows
    if not admin_url:
        assert "publish postgres" not in summary

    # every generated source row is extracted; the dbt build reads what was extracted
    assert figures["extract"] == figures["generate"]
    assert figures["dbt build"] == figures["extract"]
    # both publishes carry the same marts
    if admin_url:
        assert figures["publish postgres"] == figures["publish duckdb"]
    slowest = re.search(r"slowest models: (.+)$", summary, re.MULTILINE)
    assert slowest and len(slowest.group(1).split(", ")) == 5
    assert re.search(r"\d+ tests [\d.]+ s", summary)
    assert re.search(r"load average [\d.]+ [\d.]+ [\d.]+ at start", summary)

    # the sources are cached for the next run; the run's work files are gone
    folder, _, reused = ensure_demo_sources(CLIENTS, YEARS, cache)
    assert reused and (folder / "erp.sqlite").exists()
    assert not list(cache.glob("run_*"))


# -- the floor (kam bench daily) ------------------------------------------------------------

FLOOR_CLIENTS, FLOOR_YEARS = 60, 2  # the generator's smallest


def _source_count(path: Path, sql: str, params: tuple = ()) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute(sql, params).fetchone()[0])
    finally:
        con.close()


def test_floor_builds_the_marts_and_times_every_phase(tmp_path: Path) -> None:
    """The floor on tiny generated data: marts with the rows counted independently from the
    sources, every phase timed, ratios pipeline / floor (no kam run: tests/dagster has it)."""
    folder, gen, _ = ensure_demo_sources(FLOOR_CLIENTS, FLOOR_YEARS, tmp_path / "bench")
    as_of = date.fromisoformat(gen["end_date"])
    plan = make_plan(sqlite_sources(folder), as_of, tmp_path / "floor")
    assert not not_in_floor(plan)
    # every model and data test of the compiled project is in the plan (none listed by hand)
    nodes = json.loads(Path(plan["dbt"]["manifest"]).read_text())["nodes"].values()
    models = {n["unique_id"] for n in nodes if n["resource_type"] in ("model", "seed")}
    tests = {n["unique_id"] for n in nodes if n["resource_type"] == "test"}
    assert models == {s["id"] for s in plan["dbt"]["steps"]} and len(models) > 30
    assert tests == {t["id"] for t in plan["dbt"]["tests"]} and len(tests) > 100

    floor = run_floor_process(tmp_path / "floor" / "plan.json")

    found = floor["found"]
    assert not found["gates"] and not found["raw checks"]["failed"], found
    assert not found["dbt build"]["fail"] and not found["mart checks"]["failed"], found
    assert found["raw checks"]["checks"] > 0 and found["mart checks"]["checks"] > 0
    erp = folder / "erp.sqlite"
    clients = _source_count(erp, "select count(*) from clients")
    orders = _source_count(erp, "select count(*) from orders where order_date <= ?", (str(as_of),))
    con = duckdb.connect(plan["warehouse"], read_only=True)
    try:
        [(dim_clients,)] = con.execute("select count(*) from marts.dim_clients").fetchall()
        [(fct_orders,)] = con.execute("select count(*) from marts.fct_orders").fetchall()
    finally:
        con.close()
    assert (dim_clients, fct_orders) == (clients, orders)
    assert floor["marts"]["dim_clients"] == clients and floor["marts"]["fct_orders"] == orders
    assert mart_counts(plan["warehouse"]) == floor["marts"]

    seconds = floor["seconds"]
    for phase in DAILY_PHASES:
        assert seconds[phase] > 0, phase
    day = {
        "pipeline_seconds": {p: 10.0 * (i + 1) for i, p in enumerate(DAILY_PHASES)},
        "floor_seconds": seconds,
        "pipeline": {"wall_seconds": 500.0},
        "floor": {"wall_seconds": floor["wall_seconds"]},
    }
    rows = {name.strip(): (p, f) for name, p, f in phase_rows(day)}
    assert set(DAILY_PHASES) <= set(rows) and "total (wall)" in rows
    for name, ratio in ratios(day).items():
        p, f = rows[name]
        assert ratio == (p / f if p is not None and f else None), name
    assert ratios(day)["total (wall)"] == pytest.approx(500.0 / floor["wall_seconds"])


def _event_log(path: Path, events: list[tuple[str | None, str, str]]) -> None:
    path.parent.mkdir(parents=True)
    con = sqlite3.connect(path)
    con.execute(
        "create table event_logs (id integer primary key, run_id varchar, event text, "
        "dagster_event_type text, timestamp timestamp, step_key text, asset_key text, "
        "partition text)"
    )
    con.executemany(
        "insert into event_logs (event, dagster_event_type, timestamp, step_key) "
        "values ('{}', ?, ?, ?)",
        [(kind, stamp, step) for step, kind, stamp in events],
    )
    con.commit()
    con.close()


def test_kam_run_phases_from_step_events(tmp_path: Path) -> None:
    """Start-up is the time before the first step; steps map to phases by key; the rest is
    outside steps."""
    run_id = "0" * 8 + "-0000-0000-0000-" + "0" * 12
    t = "2026-12-01 10:00:{:02d}.000000"
    _event_log(
        tmp_path / "history" / "runs" / f"{run_id}.db",
        [
            (None, "PIPELINE_START", t.format(5)),
            ("extract_sources", "STEP_START", t.format(10)),
            ("extract_sources", "STEP_SUCCESS", t.format(14)),
            ("dbt_build", "STEP_START", t.format(15)),
            ("dbt_build", "STEP_SUCCESS", t.format(25)),
        ],
    )
    first, steps = read_steps(tmp_path, run_id)
    spawned = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC).timestamp()
    run = KamRun("2026-11-30", 0, 27.0, spawned, run_id, first, steps)
    seconds = phase_seconds(run)
    assert seconds["start-up"] == pytest.approx(10.0)
    assert seconds["start-up: before the run is recorded"] == pytest.approx(5.0)
    assert seconds["extract"] == pytest.approx(4.0)
    assert seconds["dbt build"] == pytest.approx(10.0)
    assert seconds["outside steps (between, after)"] == pytest.approx(1.0 + 2.0)


def test_benched_run_keeps_the_tuning_settings_and_drops_the_rest(tmp_path, monkeypatch) -> None:
    """A benched `kam run` sees the operator's tuning knobs (so a memory limit or a thread
    count can be benched) but none of their other KAM_/DAGSTER_/DBT_ settings: its data dir
    and sources are the bench's own."""
    monkeypatch.setenv("KAM_DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("KAM_DBT_THREADS", "3")
    monkeypatch.setenv("KAM_AS_OF_DATE", "2020-01-01")
    monkeypatch.setenv("DAGSTER_HOME", "/elsewhere")
    monkeypatch.setenv("KAM_DATA_DIR", "/elsewhere")
    env = kam_env(tmp_path, "sqlite:///erp.db", None)
    assert env["KAM_DUCKDB_MEMORY_LIMIT"] == "1GB"
    assert env["KAM_DBT_THREADS"] == "3"
    assert env["KAM_DATA_DIR"] == str(tmp_path)
    assert env["KAM_ERP_URL"] == "sqlite:///erp.db"
    assert "KAM_AS_OF_DATE" not in env
    assert env.get("DAGSTER_HOME") != "/elsewhere"
