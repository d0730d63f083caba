"""The dbt project built on Spark (README "Running on Spark"): dbt-spark's session method in
this process, on sources taken from a DuckDB work DB, and the marts compared with DuckDB's.

DuckDB stays the engine of the daily job (``kam run``); this module is the proof that the same
models build the same marts on Spark, and the way to try it on one machine:

    python -m pipelines.spark_build --work-db data/work/kam_work.duckdb --as-of 2026-09-30

1. :func:`local_session`: a local Spark session (``local[2]``, UTC, a warehouse folder).
2. :func:`load_sources`: the work DB's validated sources (the ``valid_erp`` / ``valid_crm``
   views dbt reads on DuckDB) as Spark tables of the same names, through Parquet.
3. :func:`build`: ``dbt seed`` and ``dbt build`` (models, data tests, unit tests) with
   ``--target spark``, in-process (dbtRunner), so dbt's session is this one; with
   ``--first-as-of`` models-only runs at those dates first, so that the incremental models
   (client_status_history, kam_action_log: insert_overwrite of their date partitions, the
   log's unchanged rows kept by dbt/macros/get_insert_overwrite_sql.sql) take their
   incremental path.
   The churn score is a dbt Python model, which dbt-spark runs only on Databricks (its Python
   submission methods are Databricks jobs and clusters; the session method has none): here the
   build stops before it, :func:`build_churn_model` runs the model's own ``model()`` on the
   Spark tables' rows (its DataFrame calls are DuckDB's relation API, served by an in-memory
   DuckDB) and writes the result as the Spark table dbt would have written, and the build
   goes on after it.
4. :func:`compare_marts`: every table of ``marts`` on Spark copied into a DuckDB file
   (:func:`export_marts`) and compared with the DuckDB build's by
   :mod:`pipelines.benchmark.same_marts`: EXCEPT ALL both ways, doubles within 1e-9
   (relative above 1). The work DB must hold one build at ``--as-of`` (after one at
   ``--first-as-of`` when given): a work DB of many daily runs has a longer action log and
   daily rows in its status history that one Spark build cannot have.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.benchmark import same_marts
from pipelines.benchmark.same_marts import TableDiff
from pipelines.settings import declared_default

PROJECT = Path(__file__).resolve().parents[1] / "dbt"
CHURN_MODEL = "int_clients__churn_model"
#: the Python model's inputs (built before it) and where dbt writes models of its folder
CHURN_MODEL_INPUTS = ("int_clients__score_features", "int_clients__score_settings")
CHURN_MODEL_SCHEMA = "intermediate"
SOURCE_SCHEMAS = ("valid_erp", "valid_crm")
#: relative tolerance of doubles (absolute below 1)
DOUBLE_TOLERANCE = 1e-9


def local_session(warehouse: Path, cores: int = 2) -> Any:
    """A local Spark session whose tables live under ``warehouse``; the one dbt-spark's
    session method then uses (it asks for the active session)."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("kam-dbt")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # progress bars fill the logs
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(cores * 2))
        .config("spark.driver.memory", "1g")
        .config("spark.sql.ansi.enabled", "false")  # as dbt-spark sets it
        .getOrCreate()
    )


def load_sources(spark: Any, work_db: Path, parquet_dir: Path) -> dict[str, int]:
    """The work DB's ``valid_erp`` / ``valid_crm`` relations as Spark tables of the same
    schema and name (overwritten); returns the row count of each."""
    parquet_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(work_db), read_only=True)
    counts: dict[str, int] = {}
    try:
        for schema in SOURCE_SCHEMAS:
            spark.sql(f"create database if not exists {schema}")
            names = [
                r[0]
                for r in con.execute(
                    "select table_name from information_schema.tables where table_schema = ? "
                    "order by 1",
                    [schema],
                ).fetchall()
            ]
            for name in names:
                path = parquet_dir / f"{schema}.{name}.parquet"
                con.execute(f"copy (select * from {schema}.{name}) to '{path}' (format parquet)")
                frame = spark.read.parquet(str(path))
                frame.write.mode("overwrite").saveAsTable(f"{schema}.{name}")
                counts[f"{schema}.{name}"] = frame.count()
    finally:
        con.close()
    return counts


@dataclass
class DbtStep:
    """One dbt invocation: its arguments and the status of each node it ran."""

    args: list[str]
    success: bool
    statuses: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def failed(self) -> dict[str, str]:
        return {n: s for n, s in self.statuses.items() if s not in ("success", "pass")}


def run_dbt(args: Sequence[str], target_path: Path, dbt_vars: dict[str, Any]) -> DbtStep:
    """``dbt <args> --target spark`` in this process (dbt-spark's session method uses this
    process's Spark session)."""
    from dbt.cli.main import dbtRunner

    full = [
        *args,
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--target",
        "spark",
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target-path",
        str(target_path),
        "--log-path",
        str(target_path.with_name("logs")),
        "--vars",
        json.dumps(dbt_vars),
    ]
    started = time.monotonic()
    result = dbtRunner().invoke(full)
    statuses = {}
    for node_result in getattr(result.result, "results", None) or []:
        statuses[node_result.node.unique_id] = str(node_result.status)
    seconds = round(time.monotonic() - started, 1)
    return DbtStep(list(full), bool(result.success), statuses, seconds)


class _Refs:
    """The ``dbt`` object a Python model gets, for running it outside dbt: ``ref(name)`` is a
    DuckDB relation over the rows of the Spark table ``intermediate.<name>``."""

    def __init__(self, spark: Any, con: duckdb.DuckDBPyConnection) -> None:
        self.spark, self.con = spark, con

    def ref(self, name: str) -> duckdb.DuckDBPyRelation:
        table = self.spark.table(f"{CHURN_MODEL_SCHEMA}.{name}").toArrow()
        self.con.register(f"_ref_{name}", table)
        return self.con.table(f"_ref_{name}")

    def config(self, **_: Any) -> None:
        """The model's config (materialized='table') is what this function does anyway."""


def build_churn_model(spark: Any) -> int:
    """The churn score's dbt Python model, run here on the Spark tables it refs, written as the
    Spark table ``intermediate.int_clients__churn_model``; returns its row count."""
    path = PROJECT / "models" / "clients" / "intermediate" / f"{CHURN_MODEL}.py"
    spec = importlib.util.spec_from_file_location(CHURN_MODEL, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    con = duckdb.connect()
    try:
        frame = module.model(_Refs(spark, con), None)
        table = con.from_df(frame).to_arrow_table()
    finally:
        con.close()
    result = spark.createDataFrame(table)
    result.write.mode("overwrite").saveAsTable(f"{CHURN_MODEL_SCHEMA}.{CHURN_MODEL}")
    return result.count()


def build(
    spark: Any, target_path: Path, dbt_vars: dict[str, Any], command: str = "build"
) -> list[DbtStep]:
    """``dbt seed`` and ``dbt <command>`` (``build``: models, data tests and unit tests;
    ``run``: models only) on Spark, the churn model run by :func:`build_churn_model` between
    the part of the graph before it and the rest."""
    before = [f"+{name}" for name in CHURN_MODEL_INPUTS]
    steps = [run_dbt(["seed"], target_path, dbt_vars)]
    # the graph up to the churn model's inputs, with the tests all of whose models are in it
    steps.append(
        run_dbt(
            [
                command,
                "--select",
                *before,
                "--exclude",
                CHURN_MODEL,
                "--indirect-selection",
                "cautious",
            ],
            target_path,
            dbt_vars,
        )
    )
    build_churn_model(spark)
    if command == "build":
        steps.append(run_dbt(["test", "--select", CHURN_MODEL], target_path, dbt_vars))
    # the rest, with every test that reads one of its models (eager)
    steps.append(run_dbt([command, "--exclude", *before, CHURN_MODEL], target_path, dbt_vars))
    if command == "build":
        # the data tests between the two parts (a relationship from a CRM staging model, built
        # in the rest, to an ERP one, built before): neither selection above takes them
        ran = {node for step in steps for node in step.statuses}
        missed = sorted(
            node["name"]
            for unique_id, node in _manifest_nodes(target_path).items()
            if node["resource_type"] == "test" and unique_id not in ran
        )
        if missed:
            steps.append(run_dbt(["test", "--select", *missed], target_path, dbt_vars))
    return steps


def _manifest_nodes(target_path: Path) -> dict[str, Any]:
    """The project's own nodes in dbt's manifest (the last invocation wrote it)."""
    nodes = json.loads((target_path / "manifest.json").read_text())["nodes"]
    return {k: v for k, v in nodes.items() if v.get("package_name") == "kam"}


def _tables(spark: Any, schema: str) -> list[str]:
    """The tables and views of ``schema`` (SHOW TABLES also lists the session's temporary
    views, such as dbt-spark's ``<model>__dbt_tmp``: left out)."""
    rows = spark.sql(f"show tables in {schema}").collect()
    return sorted(r.tableName for r in rows if not r.isTemporary)


def export_marts(spark: Any, reference: Path, out: Path, schema: str = "marts") -> Path:
    """Spark's tables of ``schema`` copied into the DuckDB file ``out`` (same schema and
    names), for :mod:`pipelines.benchmark.same_marts`. Where the DuckDB ``reference`` has the
    table with the same column names, each column takes the reference's type and place
    (Spark puts partition columns last and has no VARCHAR / TIMESTAMP without time zone);
    else the table is copied as it is and the comparison reports its columns."""
    out.unlink(missing_ok=True)
    con = duckdb.connect(str(out))
    try:
        con.execute("set TimeZone = 'UTC'")  # the Spark session's time zone (local_session)
        con.execute(f"attach '{reference}' as ref (read_only)")
        con.execute(f"create schema {schema}")
        for table in _tables(spark, schema):
            rows = spark.table(f"{schema}.{table}").toArrow()
            con.register("_spark_rows", rows)
            reference_columns = con.execute(
                "select column_name, data_type from duckdb_columns() where database_name = 'ref' "
                "and schema_name = ? and table_name = ? order by column_index",
                [schema, table],
            ).fetchall()
            spark_columns = {c.lower(): c for c in rows.column_names}
            select = "*"
            if sorted(c.lower() for c, _ in reference_columns) == sorted(spark_columns):
                select = ", ".join(
                    f'cast("{spark_columns[c.lower()]}" as {t}) as "{c}"'
                    for c, t in reference_columns
                )
            con.execute(f'create table {schema}."{table}" as select {select} from _spark_rows')
            con.unregister("_spark_rows")
    finally:
        con.close()
    return out


def compare_marts(
    spark: Any, work_db: Path, exported: Path, schema: str = "marts"
) -> list[TableDiff]:
    """Every table of ``schema`` on Spark against the DuckDB work DB's
    (:func:`pipelines.benchmark.same_marts.compare`, "before" = DuckDB, "after" = Spark): the
    same tables and columns, the same rows both ways (EXCEPT ALL), doubles within
    DOUBLE_TOLERANCE."""
    export_marts(spark, work_db, exported, schema)
    return same_marts.compare(work_db, exported, tolerance=DOUBLE_TOLERANCE, schemas=(schema,))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-db", type=Path, required=True, help="the DuckDB work DB")
    parser.add_argument("--as-of", required=True, help="the as-of date, YYYY-MM-DD")
    parser.add_argument(
        "--first-as-of",
        action="append",
        default=[],
        help="first run the models at this earlier date (YYYY-MM-DD; repeatable, in date "
        "order), as the daily job did before: the incremental models (client_status_history, "
        "kam_action_log) then take their incremental path. The work DB must have been built "
        "the same way (runs at these dates, then at --as-of), else those marts differ by "
        "construction",
    )
    parser.add_argument("--history-days", type=int, default=declared_default("history_days"))
    parser.add_argument("--dir", type=Path, help="Spark's warehouse and dbt's files (tmp)")
    parser.add_argument("--report", type=Path, help="write the steps and comparisons as JSON")
    args = parser.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="kam-spark-"))
    started = time.monotonic()
    spark = local_session(base / "warehouse")
    load_sources(spark, args.work_db, base / "sources")
    steps: list[DbtStep] = []
    runs = [(as_of, "run") for as_of in args.first_as_of] + [(args.as_of, "build")]
    for as_of, command in runs:
        dbt_vars = {"as_of_date": as_of, "history_days": args.history_days}
        steps += build(spark, base / "target", dbt_vars, command)
    for step in steps:
        outcome = "ok" if step.success else f"FAILED {step.failed()}"
        print(" ".join(step.args[:4]), f"{step.seconds:.0f} s", outcome)
    built = time.monotonic()
    results = compare_marts(spark, args.work_db, base / "spark_marts.duckdb")
    for r in results:
        status = "same" if r.same else f"DIFFERENT {r.problem}".strip()
        print(
            f"{r.table:40} rows {r.rows:>7}  only DuckDB {r.only_before:>5}  "
            f"only Spark {r.only_after:>5}  {status}"
        )
    if args.report:
        report = {
            "build_seconds": round(built - started, 1),
            "compare_seconds": round(time.monotonic() - built, 1),
            "steps": [asdict(step) for step in steps],
            "marts": [{**asdict(r), "same": r.same} for r in results],
        }
        args.report.write_text(json.dumps(report, indent=1))
    return 0 if all(s.success for s in steps) and results and all(r.same for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
