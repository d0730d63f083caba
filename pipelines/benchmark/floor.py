"""The floor: the daily run's work done in one Python process on one DuckDB connection.

What it runs comes from a plan made beforehand (:mod:`pipelines.benchmark.floor_plan`):
dbt's compiled SQL and the checks as SQL. This module never imports Dagster, dbt or Great
Expectations; each phase is timed on its own:

* **extract**: every contract table read from the sources (SQLite with ``sqlite3``, or a
  folder of Parquet/CSV files) into the pipeline's raw tables (``raw_schema``), values cast
  to the contract types, unreadable rows and duplicate keys kept out as the pipeline does;
  then the pipeline's own row quarantine (``apply_quarantine``, plain DuckDB SQL), which
  builds the ``valid_*`` views dbt reads;
* **gates**: the pipeline's batch gates (``evaluate_gates``, SQL);
* **raw checks** / **mart checks**: one aggregate per check, no Great Expectations;
* **dbt build**: seeds read with ``read_csv``, each model's compiled SQL in dependency order
  (``create table/view as``, cast to its enforced contract), then every data test the way
  dbt's test materialization counts its failures;
* **publish**: marts and audit tables copied into a new DuckDB file (the published storage
  version), counts verified, then swapped in with ``os.replace``.

Run it in a fresh process (``python -m pipelines.benchmark _floor PLAN``) so that its start-up
and peak memory are its own.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.contract import TABLES, Table
from pipelines.extract.raw_schema import ensure_raw_schema, raw_table_name

RUN_ID = "floor"
#: contract type -> the Arrow type values are read as from SQLite (dates and booleans are
#: text / integers there; DuckDB casts them to the contract type)
_READ_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.int64(),
    "date": pa.string(),
    "timestamp": pa.string(),
}
_DUCKDB_TYPES = {
    "string": "varchar",
    "integer": "bigint",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


class Timer:
    """Seconds per phase (and sub-phase), in the order they ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


# -- extract ----------------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def _arrow_column(values: list, kind: str) -> pa.Array:
    """Values of one column as Arrow; as text when the source holds something else (a bad
    value then fails DuckDB's cast, and its row is left out like the pipeline's rejects)."""
    try:
        return pa.array(values, type=_READ_TYPES[kind])
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _read_sqlite(path: Path, table: Table) -> pa.Table:
    """One contract table from a SQLite file (names case-insensitive, extra columns left)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = {r[0].lower(): r[0] for r in con.execute("select name from sqlite_master")}
        actual = names[table.name.lower()]
        columns = {r[1].lower(): r[1] for r in con.execute(f'pragma table_info("{actual}")')}
        select = ", ".join(f'"{columns[c.name.lower()]}"' for c in table.columns)
        rows = con.execute(f'select {select} from "{actual}"').fetchall()
    finally:
        con.close()
    by_column = list(zip(*rows, strict=True)) if rows else [() for _ in table.columns]
    arrays = [_arrow_column(list(v), c.type) for v, c in zip(by_column, table.columns, strict=True)]
    return pa.table(arrays, names=[c.name for c in table.columns])


def _folder_relation(folder: Path, table: Table) -> str:
    """DuckDB's reader of ``<table>.parquet`` or ``<table>.csv`` in a source folder."""
    parquet, csv = folder / f"{table.name}.parquet", folder / f"{table.name}.csv"
    if parquet.exists():
        return f"read_parquet('{parquet}')"
    if csv.exists():
        return f"read_csv('{csv}', header = true, all_varchar = true)"
    raise FileNotFoundError(f"{folder}: no {table.name}.parquet or .csv")


def _insert_raw(con: duckdb.DuckDBPyConnection, table: Table, relation: str) -> dict[str, int]:
    """Cast ``relation`` into the raw table: rows with a value that cannot be read, and every
    copy of a key read twice, are left out (the pipeline keeps them aside)."""
    casts = [
        f'try_cast("{c.name}" as {_DUCKDB_TYPES[c.type]}) as "{c.name}"' for c in table.columns
    ]
    readable = " and ".join(
        f'("{c.name}" is null or try_cast("{c.name}" as {_DUCKDB_TYPES[c.type]}) is not null)'
        for c in table.columns
    )
    key = ", ".join(f'"{k}"' for k in table.primary_key)
    target = raw_table_name(table)
    [(source_rows,)] = con.execute(f"select count(*) from {relation}").fetchall()
    con.execute(
        f"insert into {target} select {', '.join(casts)}, '{RUN_ID}', now()::timestamp "
        f"from {relation} where {readable}"
    )
    [(dup_rows,)] = con.execute(
        f"select coalesce(sum(n), 0) from (select count(*) n from {target} "
        f"group by {key} having count(*) > 1)"
    ).fetchall()
    if dup_rows:
        con.execute(
            f"delete from {target} where ({key}) in "
            f"(select ({key}) from {target} group by {key} having count(*) > 1)"
        )
    [(loaded,)] = con.execute(f"select count(*) from {target}").fetchall()
    return {"source_rows": int(source_rows), "raw_rows": int(loaded), "duplicates": int(dup_rows)}


def _record_counts(con: duckdb.DuckDBPyConnection, counts: Mapping[tuple[str, str], int]) -> None:
    """``raw_meta.source_counts`` as the extraction writes it (the gates read it)."""
    from pipelines.extract.raw_loader import ensure_source_counts

    ensure_source_counts(con)
    con.executemany(
        "insert or replace into raw_meta.source_counts values (?, ?, ?, ?, now()::timestamp, null)",
        [[RUN_ID, system, name, n] for (system, name), n in counts.items()],
    )


def extract(con: duckdb.DuckDBPyConnection, sources: Mapping[str, str | None]) -> dict[str, Any]:
    """Every contract table of the configured sources into the raw layer (others stay empty)."""
    ensure_raw_schema(con)
    tables: dict[str, dict[str, int]] = {}
    for table in TABLES:
        url = sources.get(table.system)
        if not url:
            continue
        path = _sqlite_path(url)
        if path is not None:
            con.register("floor_source", _read_sqlite(path, table))
            try:
                figures = _insert_raw(con, table, "floor_source")
            finally:
                con.unregister("floor_source")
        else:
            figures = _insert_raw(con, table, _folder_relation(Path(url), table))
        tables[f"{table.system}.{table.name}"] = figures
    counts = {(k.split(".")[0], k.split(".")[1]): v["source_rows"] for k, v in tables.items()}
    _record_counts(con, counts)
    return tables


def quarantine(con: duckdb.DuckDBPyConnection, plan: Mapping[str, Any]) -> int:
    """The pipeline's row quarantine (SQL in DuckDB): the ``valid_*`` views dbt reads."""
    from pipelines.gate.quarantine import apply_quarantine
    from pipelines.gate.row_rules import row_rules

    summary = apply_quarantine(
        con,
        RUN_ID,
        date.fromisoformat(plan["as_of"]),
        today=date.fromisoformat(plan["today"]),
        rules=row_rules(max_line_amount=plan["settings"]["max_line_amount"]),
    )
    return int(summary.quarantined_rows)


def gates(con: duckdb.DuckDBPyConnection, plan: Mapping[str, Any]) -> list[str]:
    """The pipeline's batch gates; the failed ones."""
    from pipelines.gate.batch_gates import evaluate_gates

    results = evaluate_gates(
        con,
        RUN_ID,
        quarantine_max_share=plan["settings"]["quarantine_max_share"],
        row_drop_max_share=plan["settings"]["row_drop_max_share"],
    )
    return [f"{g.system}.{g.table} {g.gate}: {g.message}" for g in results if not g.passed]


# -- checks -----------------------------------------------------------------------------------


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.execute(
        "select table_schema || '.' || table_name, lower(column_name) "
        "from information_schema.columns"
    ).fetchall()
    out: dict[str, set[str]] = {}
    for relation, column in rows:
        out.setdefault(relation, set()).add(column)
    return out


def _revenue_band(con: duckdb.DuckDBPyConnection, check: Mapping[str, Any]) -> bool:
    """The revenue band check: the pipeline's band, judged without Great Expectations."""
    from pipelines.gate.revenue_band import compute_band

    daily = con.execute(check["sql"]).df()
    band = compute_band(daily, date.fromisoformat(check["as_of"]), days=check["days"], k=check["k"])
    if band.skipped is not None:
        return True
    return round(band.low, 2) <= round(band.value, 2) <= round(band.high, 2)


def run_checks(con: duckdb.DuckDBPyConnection, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The checks whose relation and columns exist, as plain SQL; failures by name."""
    available = _columns(con)
    failed, ran, skipped = [], 0, []
    for check in checks:
        columns = available.get(check["relation"])
        if (
            columns is None
            or not set(check["columns"]) <= columns
            or check["kind"] == "not_in_floor"
        ):
            skipped.append(check["name"])
            continue
        ran += 1
        if check["kind"] == "revenue_band":
            passed = _revenue_band(con, check)
        else:
            counts = [v for q in check["queries"] for v in con.execute(q["sql"]).fetchall()[0]]
            passed = not any(counts)
        if not passed:
            failed.append(check["name"])
    return {"checks": ran, "failed": failed, "skipped": skipped}


# -- dbt build --------------------------------------------------------------------------------


def _schemas(con: duckdb.DuckDBPyConnection, steps: list[dict[str, Any]]) -> None:
    for schema in sorted({s["schema"] for s in steps}):
        con.execute(f'create schema if not exists "{schema}"')


def _seed(con: duckdb.DuckDBPyConnection, step: Mapping[str, Any]) -> None:
    types = ", ".join(f"'{c}': '{t}'" for c, t in step["column_types"].items())
    options = f", types = {{{types}}}" if types else ""
    con.execute(
        f"create or replace table {step['relation']} as select * from read_csv("
        f"'{step['csv']}', header = true, delim = '{step['delimiter']}'{options})"
    )


def _python_model(con: duckdb.DuckDBPyConnection, step: Mapping[str, Any]) -> None:
    """A dbt Python model as dbt-duckdb runs it: its compiled module's ``model(dbt, con)``
    with ``dbt.ref`` reading the relation, the returned frame stored as a table."""
    namespace: dict[str, Any] = {"__name__": "floor_python_model"}
    exec(compile(step["sql"], step["id"], "exec"), namespace)  # noqa: S102 - dbt's own code
    dbt = namespace["dbtObj"](lambda relation: con.sql(f"select * from {relation}"))
    frame = namespace["model"](dbt, con)
    con.register("floor_python_model_frame", frame)
    try:
        con.execute(
            f"create or replace table {step['relation']} as select * from floor_python_model_frame"
        )
    finally:
        con.unregister("floor_python_model_frame")


def _model(con: duckdb.DuckDBPyConnection, step: Mapping[str, Any]) -> None:
    """A model as dbt-duckdb materializes it on a first build (incremental = table)."""
    if step.get("language") == "python":
        _python_model(con, step)
        return
    sql = step["sql"]
    if step["contract"]:  # an enforced contract: the declared column types
        casts = ", ".join(f'cast("{n}" as {t}) as "{n}"' for n, t in step["contract"])
        sql = f"select {casts} from ({sql}) as model_subq"
    kind = "view" if step["materialized"] == "view" else "table"
    con.execute(f"create or replace {kind} {step['relation']} as {sql}")


def _test(con: duckdb.DuckDBPyConnection, test: Mapping[str, Any]) -> str | None:
    """A data test as dbt's test materialization runs it: 'fail', 'warn' or None."""
    calc = test["fail_calc"]
    [(warn, error)] = con.execute(
        f"select {calc} {test['warn_if']}, {calc} {test['error_if']} "
        f"from ({test['sql']}) dbt_internal_test"
    ).fetchall()
    if error and test["severity"] == "ERROR":
        return "fail"
    return "warn" if warn or error else None


def dbt_build(con: duckdb.DuckDBPyConnection, plan: Mapping[str, Any], timer: Timer) -> dict:
    """Seeds and models in dependency order, then every data test."""
    dbt = plan["dbt"]
    _schemas(con, dbt["steps"])
    with timer.phase("dbt build: seeds + models"):
        for step in dbt["steps"]:
            (_seed if step["kind"] == "seed" else _model)(con, step)
    outcomes: dict[str, list[str]] = {"fail": [], "warn": []}
    with timer.phase("dbt build: tests"):
        for test in dbt["tests"]:
            verdict = _test(con, test)
            if verdict:
                outcomes[verdict].append(test["id"])
    models = sum(1 for s in dbt["steps"] if s["kind"] == "model")
    return {"models": models, "tests": len(dbt["tests"]), **outcomes}


# -- publish ----------------------------------------------------------------------------------


def publish(con: duckdb.DuckDBPyConnection, warehouse: Path, storage_version: str) -> dict:
    """Marts and audit tables into a new file, counts verified, swapped in atomically."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    temp = warehouse.with_name(f".{warehouse.name}.floor")
    temp.unlink(missing_ok=True)
    con.execute(f"attach '{temp}' as pub (storage_version '{storage_version}')")
    relations = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = "
        "current_database() and schema_name in ('marts', 'audit') union all "
        "select schema_name, view_name from duckdb_views() where database_name = "
        "current_database() and schema_name in ('marts', 'audit') and not internal"
    ).fetchall()
    counts: dict[str, int] = {}
    for schema in sorted({s for s, _ in relations}):
        con.execute(f'create schema pub."{schema}"')
    for schema, name in relations:
        rel = f'"{schema}"."{name}"'
        con.execute(f"create table pub.{rel} as select * from {rel}")
        [(source,)] = con.execute(f"select count(*) from {rel}").fetchall()
        [(copied,)] = con.execute(f"select count(*) from pub.{rel}").fetchall()
        if source != copied:
            raise RuntimeError(f"{schema}.{name}: copied {copied} rows of {source}")
        counts[f"{schema}.{name}"] = int(copied)
    con.execute("checkpoint pub")
    con.execute("detach pub")
    os.replace(temp, warehouse)
    return counts


def mart_counts(warehouse: Path | str) -> dict[str, int]:
    """Rows of every table of schema ``marts`` in a published file (publish_* excluded)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        names = con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "and table_name not like 'publish\\_%' escape '\\' order by 1"
        ).fetchall()
        return {
            n: int(con.execute(f'select count(*) from marts."{n}"').fetchall()[0][0])
            for (n,) in names
        }
    finally:
        con.close()


# -- the whole floor --------------------------------------------------------------------------


def _phases(con: duckdb.DuckDBPyConnection, plan: Mapping[str, Any], timer: Timer) -> dict:
    """Every phase on one connection, in the pipeline's order; what each found."""
    found: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("extract", lambda: extract(con, plan["sources"])),
        ("extract: quarantine", lambda: quarantine(con, plan)),
        ("gates", lambda: gates(con, plan)),
        ("raw checks", lambda: run_checks(con, plan["checks"]["raw"])),
        ("dbt build", lambda: dbt_build(con, plan, timer)),
        ("mart checks", lambda: run_checks(con, plan["checks"]["mart"])),
    ]
    for name, step in steps:
        with timer.phase(name):
            found[name] = step()
    return found


def run_floor(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The floor of ``plan`` (see :func:`pipelines.benchmark.floor_plan.make_plan`): seconds
    per phase, what each phase found and the published marts' row counts."""
    timer = Timer()
    work_db = Path(plan["work_db"])
    work_db.unlink(missing_ok=True)
    started = time.time()
    con = duckdb.connect(str(work_db))
    try:
        found = _phases(con, plan, timer)
        with timer.phase("publish"):
            found["publish"] = publish(
                con, Path(plan["warehouse"]), plan["settings"]["storage_version"]
            )
    finally:
        con.close()
    seconds = dict(timer.seconds)
    # the quarantine is part of the pipeline's extract step too: report it inside extract
    seconds["extract"] += seconds.get("extract: quarantine", 0.0)
    return {
        "started_at": started,
        "seconds": seconds,
        "found": found,
        "marts": {
            k.split(".", 1)[1]: v for k, v in found["publish"].items() if k.startswith("marts.")
        },
    }


def floor_child(plan_path: Path) -> None:
    """``python -m pipelines.benchmark _floor PLAN``: the floor, its result as JSON beside the
    plan. What the phases import is imported first, so that it counts as start-up."""
    import json

    import pandas  # noqa: F401  (the revenue band's frame)

    import pipelines.extract.raw_loader  # noqa: F401
    import pipelines.gate.batch_gates  # noqa: F401
    import pipelines.gate.quarantine  # noqa: F401
    import pipelines.gate.revenue_band  # noqa: F401

    plan = json.loads(Path(plan_path).read_text())
    result = run_floor(plan)
    Path(plan_path).with_name("floor_result.json").write_text(json.dumps(result, default=str))
