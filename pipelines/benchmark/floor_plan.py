"""What the floor runs, prepared outside its timed part: dbt's compiled SQL and the checks as SQL.

The floor (:mod:`pipelines.benchmark.floor`) must do the pipeline's work and nothing else, so
everything it needs is derived here from the pipeline's own declarations and written to one
JSON plan:

* ``dbt compile`` with the run's vars (those of ``dbt_build_args``) into a target folder of
  the floor's own; the manifest gives every seed, model and data test (whatever models exist
  today: nothing is listed by hand), each model's compiled SQL and materialization, in
  dependency order;
* the raw and mart checks (``raw_checks()``, ``MART_CHECKS``) as plain DuckDB aggregates:
  the SQL predicates of the SQL-first engine (``streaming._predicate``), one ``count(*)
  filter`` per row-wise expectation and a ``group by ... having count(*) > 1`` per key.

Building the checks needs Great Expectations' expectation classes, so the plan is made in
the benchmark's own process, never in the timed floor process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipelines.run_params import DAILY_DBT_EXCLUDE, RunParameters
from pipelines.settings import Settings

#: the floor's work DB file name: dbt qualifies relations with the file's stem as catalog
FLOOR_DB_NAME = "kam_work.duckdb"


def dbt_project_dir() -> Path:
    """The repository's dbt project (``dbt/`` beside ``pipelines/``)."""
    return Path(__file__).resolve().parents[2] / "dbt"


def run_parameters(as_of: date, has_crm: bool) -> RunParameters:
    """The run parameters the pipeline derives for ``as_of`` (same settings, same clock)."""
    settings = Settings.from_env()
    params = RunParameters.derive(as_of, settings)
    # the benchmark decides whether there is a CRM (its sources), not the environment
    return type(params)(**{**params.__dict__, "has_crm": has_crm})


def dbt_compile(params: RunParameters, work_db: Path, target: Path) -> dict[str, Any]:
    """``dbt compile`` with the run's vars into ``target``; the manifest path and seconds.

    ``work_db`` is the (empty) floor work DB: compiling against a DB without the models
    gives the first build's SQL (an incremental model compiles as a full build).
    """
    project = dbt_project_dir()
    cmd = [
        str(Path(sys.executable).parent / "dbt"),
        "compile",
        "--vars",
        json.dumps(params.dbt_vars()),
        "--exclude",
        DAILY_DBT_EXCLUDE,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
    ]
    env = {
        **os.environ,
        "KAM_WORK_DB": str(work_db),
        "DBT_TARGET_PATH": str(target),  # never the checkout's dbt/target
        "DBT_LOG_PATH": str(target / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"dbt compile failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    return {"manifest": str(target / "manifest.json"), "seconds": time.perf_counter() - started}


def _topological(nodes: Mapping[str, dict]) -> list[str]:
    """Node ids in dependency order (parents first; ties by id, so the order is stable)."""
    done: dict[str, None] = {}

    def visit(uid: str, path: tuple[str, ...]) -> None:
        if uid in done:
            return
        if uid in path:
            raise ValueError(f"dependency cycle through {uid}")
        for parent in sorted((nodes[uid].get("depends_on") or {}).get("nodes") or []):
            if parent in nodes:
                visit(parent, (*path, uid))
        done[uid] = None

    for uid in sorted(nodes):
        visit(uid, ())
    return list(done)


def _contract_columns(node: dict) -> list[list[str]] | None:
    """[name, data_type] of an enforced contract (what dbt casts the model's select to)."""
    if not (node["config"].get("contract") or {}).get("enforced"):
        return None
    columns = [[c["name"], c.get("data_type")] for c in node.get("columns", {}).values()]
    return columns if columns and all(t for _, t in columns) else None


def _seed_entry(node: dict, project: Path) -> dict[str, Any]:
    return {
        "id": node["unique_id"],
        "kind": "seed",
        "schema": node["schema"],
        "relation": node["relation_name"],
        "csv": str(project / node["original_file_path"]),
        "column_types": node["config"].get("column_types") or {},
        "delimiter": node["config"].get("delimiter") or ",",
    }


def _model_entry(node: dict) -> dict[str, Any]:
    return {
        "id": node["unique_id"],
        "kind": "model",
        "schema": node["schema"],
        "relation": node["relation_name"],
        "materialized": node["config"]["materialized"],
        "sql": node["compiled_code"],
        # a dbt Python model (the churn score): compiled_code is its Python module
        "language": node.get("language") or "sql",
        "contract": _contract_columns(node),
        "parents": sorted((node.get("depends_on") or {}).get("nodes") or []),
    }


def _test_entry(node: dict) -> dict[str, Any]:
    config = node["config"]
    limit = config.get("limit")
    return {
        "id": node["unique_id"],
        "sql": node["compiled_code"] + (f"\nlimit {int(limit)}" if limit else ""),
        "fail_calc": config.get("fail_calc") or "count(*)",
        "warn_if": config.get("warn_if") or "!= 0",
        "error_if": config.get("error_if") or "!= 0",
        "severity": (config.get("severity") or "ERROR").upper(),
    }


def _enabled(manifest: Mapping[str, Any]) -> dict[str, dict]:
    return {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("seed", "model", "test") and node["config"].get("enabled")
    }


def dbt_plan(manifest_path: Path, fresh_path: Path | None = None) -> dict[str, Any]:
    """Seeds and models in dependency order, and every data test, from a manifest.

    ``manifest_path`` may be the pipeline's own (its build's ``target/manifest.json``): the
    floor then runs exactly the SQL the pipeline ran, even when the project changes while
    the benchmark runs. An incremental model compiled there for an incremental run is taken
    from ``fresh_path`` (a compile against an empty DB: its full build, what a floor from
    nothing must do).
    """
    enabled = _enabled(json.loads(Path(manifest_path).read_text()))
    fresh = _enabled(json.loads(Path(fresh_path).read_text())) if fresh_path else {}
    project = dbt_project_dir()
    buildable = {u: n for u, n in enabled.items() if n["resource_type"] in ("seed", "model")}
    steps = []
    for uid in _topological(buildable):
        node = buildable[uid]
        if node["resource_type"] == "seed":
            steps.append(_seed_entry(node, project))
        elif node["config"]["materialized"] == "incremental" and uid in fresh:
            steps.append(_model_entry(fresh[uid]))
        elif node["config"]["materialized"] != "ephemeral":  # inlined into its children
            steps.append(_model_entry(node))
    tests = [
        _test_entry(n)
        for u, n in sorted(enabled.items())
        if n["resource_type"] == "test" and n.get("compiled_code") is not None
    ]
    return {"steps": steps, "tests": tests, "manifest": str(manifest_path)}


# -- the checks as SQL ------------------------------------------------------------------------


def _literal(value: Any) -> str:
    """A value of a check's parameters as a DuckDB literal (dates keep their type)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list | tuple | set):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(f"no SQL literal for {value!r}")


def _inline(sql: str, params: Mapping[str, Any]) -> str:
    """The predicate with its ``$name`` parameters written as literals (longest name first,
    so ``$p1_set`` never replaces part of ``$p1_set2``)."""
    for name in sorted(params, key=len, reverse=True):
        sql = re.sub(rf"\${re.escape(name)}\b", _literal(params[name]), sql)
    return sql


def _expectation_sql(frame_sql: str, expectations: list) -> list[dict[str, str]]:
    """One aggregate per check for its row-wise expectations, one per uniqueness."""
    from pipelines.quality import streaming

    counts, queries = [], []
    for j, e in enumerate(expectations):
        if streaming._kind(e) == "unique":
            cols, judged = streaming._unique_columns(e)
            key = ", ".join(streaming._quote(c) for c in cols)
            queries.append(
                {
                    "expectation": e.expectation_type,
                    "sql": f"with f as ({frame_sql}) select coalesce(sum(n__), 0) from "
                    f"(select {key}, count(*) as n__ from f where {judged} group by {key} "
                    "having count(*) > 1)",
                }
            )
        else:
            pred = streaming._predicate(e, {}, f"p{j}")
            counts.append((e.expectation_type, _inline(pred.unexpected, pred.params)))
    if counts:
        filters = ", ".join(f"count(*) filter (where {cond})" for _, cond in counts)
        queries.insert(
            0,
            {
                "expectation": "+".join(kind for kind, _ in counts),
                "sql": f"with f as ({frame_sql}) select {filters} from f",
            },
        )
    return queries


def _check_entry(check: Any, ctx: Any, stage: str) -> dict[str, Any]:
    """A check as SQL the floor runs; ``kind`` ``sql``, ``revenue_band`` or ``not_in_floor``."""
    from pipelines.quality.checks import check_name
    from pipelines.quality.mart_checks import REVENUE_BAND_CHECK
    from pipelines.quality.streaming import sql_first_supported

    entry: dict[str, Any] = {
        "name": check_name(check),
        "stage": stage,
        "relation": check.relation,
        "columns": sorted({c.lower() for c in (*check.columns, *check.id_columns)}),
    }
    if check.derive is not None:
        if check.name != REVENUE_BAND_CHECK:
            return {**entry, "kind": "not_in_floor"}
        return {
            **entry,
            "kind": "revenue_band",
            "sql": check.sql(ctx),
            "as_of": ctx.as_of.isoformat(),
            "days": ctx.revenue_band_days,
            "k": ctx.revenue_band_k,
        }
    expectations = check.expectations(ctx)
    if not sql_first_supported(expectations):
        return {**entry, "kind": "not_in_floor"}
    queries = _expectation_sql(check.sql(ctx), expectations)
    return {**entry, "kind": "sql", "queries": queries, "expectations": len(expectations)}


def check_plan(params: RunParameters) -> dict[str, list[dict[str, Any]]]:
    """The raw and mart checks of a run as SQL (the mart checks filtered at run time to the
    marts and columns that exist, as ``applicable_checks`` does in the pipeline)."""
    from pipelines.quality.checks import check_context
    from pipelines.quality.mart_checks import MART_CHECKS
    from pipelines.quality.raw_checks import raw_checks

    ctx = check_context(Settings.from_env(), params)
    return {
        "raw": [_check_entry(c, ctx, "raw") for c in raw_checks()],
        "mart": [_check_entry(c, ctx, "mart") for c in MART_CHECKS],
    }


def settings_plan() -> dict[str, Any]:
    """The settings the floor's quarantine, gates and publish use (the pipeline's values)."""
    s = Settings.from_env()
    return {
        "max_line_amount": s.max_line_amount,
        "quarantine_max_share": s.quarantine_max_share,
        "row_drop_max_share": s.row_drop_max_share,
        "storage_version": s.duckdb_storage_version,
    }


def make_plan(
    sources: Mapping[str, str | None],
    as_of: date,
    floor_dir: Path,
    pipeline_manifest: Path | None = None,
) -> dict[str, Any]:
    """Compile dbt and the checks for a floor run into ``floor_dir`` (``plan.json``).

    ``sources``: ``{"erp": url, "crm": url or None}``. The floor's work DB will be
    ``floor_dir/kam_work.duckdb`` (compiled relations name its catalog, ``kam_work``).
    ``pipeline_manifest``: the manifest of the pipeline's build of the same date, whose
    compiled SQL the floor then runs (see :func:`dbt_plan`); else the fresh compile's.
    """
    floor_dir = Path(floor_dir)
    floor_dir.mkdir(parents=True, exist_ok=True)
    params = run_parameters(as_of, has_crm=bool(sources.get("crm")))
    work_db = floor_dir / FLOOR_DB_NAME
    work_db.unlink(missing_ok=True)
    compiled = dbt_compile(params, work_db, floor_dir / "dbt_target")
    work_db.unlink(missing_ok=True)  # the floor starts from nothing, like a first run
    Path(str(work_db) + ".wal").unlink(missing_ok=True)
    started = time.perf_counter()
    plan = {
        "as_of": params.as_of.isoformat(),
        "today": params.today.isoformat(),
        "has_crm": params.has_crm,
        "sources": dict(sources),
        "work_db": str(work_db),
        "warehouse": str(floor_dir / "warehouse" / "kam.duckdb"),
        "settings": settings_plan(),
        "dbt": (
            dbt_plan(pipeline_manifest, Path(compiled["manifest"]))
            if pipeline_manifest is not None
            else dbt_plan(Path(compiled["manifest"]))
        ),
        "checks": check_plan(params),
        "compile_seconds": compiled["seconds"],
    }
    plan["checks_plan_seconds"] = time.perf_counter() - started
    (floor_dir / "plan.json").write_text(json.dumps(plan, indent=1, default=str))
    return plan


def not_in_floor(plan: Mapping[str, Any]) -> list[str]:
    """Checks the floor cannot run as plain SQL (none today; listed when one appears)."""
    checks: Iterable[dict] = [*plan["checks"]["raw"], *plan["checks"]["mart"]]
    return [c["name"] for c in checks if c["kind"] == "not_in_floor"]
