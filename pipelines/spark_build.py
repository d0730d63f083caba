"""The dbt project built on Spark (README "Running on Spark"): dbt-spark's session method in
this process, on sources taken from a DuckDB work DB, and the marts compared with DuckDB's.

DuckDB stays the engine of the daily job (``kam run``); this module is the proof that the same
models build the same marts on Spark, and the way to try it on one machine:

    python -m pipelines.spark_build --work-db data/work/kam_work.duckdb --as-of 2026-09-30

1. :func:`local_session`: a local Spark session (``local[2]``, UTC, a warehouse folder).
2. :func:`load_sources`: the work DB's validated sources (the ``valid_erp`` / ``valid_crm``
   views dbt reads on DuckDB) as Spark tables of the same names, through Parquet.
3. :func:`build`: ``dbt seed`` and ``dbt build`` (models, data tests, unit tests) with
   ``--target spark``, in-process (dbtRunner), so dbt's session is this one.
   The churn score is a dbt Python model, which dbt-spark runs only on Databricks (its Python
   submission methods are Databricks jobs and clusters; the session method has none): here the
   build stops before it, :func:`build_churn_model` runs the model's own ``model()`` on the
   Spark tables' rows (its DataFrame calls are DuckDB's relation API, served by an in-memory
   DuckDB) and writes the result as the Spark table dbt would have written, and the build
   goes on after it.
4. :func:`compare_marts`: every table of ``marts`` on Spark against the DuckDB build's, EXCEPT
   ALL both ways, doubles equal within 1e-9 (relative above 1).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

PROJECT = Path(__file__).resolve().parents[1] / "dbt"
CHURN_MODEL = "int_clients__churn_model"
#: the Python model's inputs (built before it) and where dbt writes models of its folder
CHURN_MODEL_INPUTS = ("int_clients__score_features", "int_clients__score_settings")
CHURN_MODEL_SCHEMA = "intermediate"
SOURCE_SCHEMAS = ("valid_erp", "valid_crm")
#: models that need a Delta (or Iceberg/Hudi) table on Spark: kam_action_log rewrites its rows
#: by (action_id, opened_on), a merge, which dbt-spark refuses on the session method's Parquet
#: tables; left out of the local build with what reads it (manager_portfolio)
NEEDS_DELTA = ("kam_action_log",)
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
    result = dbtRunner().invoke(full)
    statuses = {}
    for node_result in getattr(result.result, "results", None) or []:
        statuses[node_result.node.unique_id] = str(node_result.status)
    return DbtStep(list(full), bool(result.success), statuses)


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
    spark: Any, target_path: Path, dbt_vars: dict[str, Any], delta_tables: bool = False
) -> list[DbtStep]:
    """``dbt seed`` and ``dbt build`` on Spark, the churn model run by
    :func:`build_churn_model` between the part of the graph before it and the rest. Without
    ``delta_tables`` (a session whose tables are Parquet) the NEEDS_DELTA models and their
    descendants are left out."""
    before = [f"+{name}" for name in CHURN_MODEL_INPUTS]
    steps = [run_dbt(["seed"], target_path, dbt_vars)]
    # the graph up to the churn model's inputs, with the tests all of whose models are in it
    steps.append(
        run_dbt(
            [
                "build",
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
    steps.append(run_dbt(["test", "--select", CHURN_MODEL], target_path, dbt_vars))
    # the rest, with every test that reads one of its models (eager); without Delta tables,
    # not the models that need them and what reads them
    delta = [] if delta_tables else [f"{name}+" for name in NEEDS_DELTA]
    steps.append(
        run_dbt(["build", "--exclude", *before, CHURN_MODEL, *delta], target_path, dbt_vars)
    )
    return steps


@dataclass
class TableComparison:
    table: str
    rows_duckdb: int
    rows_spark: int
    only_duckdb: int
    only_spark: int
    problem: str = ""

    @property
    def same(self) -> bool:
        return not self.problem and self.only_duckdb == 0 and self.only_spark == 0


def _tables(spark: Any, schema: str) -> list[str]:
    return sorted(r.tableName for r in spark.sql(f"show tables in {schema}").collect())


def compare_marts(spark: Any, work_db: Path, schema: str = "marts") -> list[TableComparison]:
    """Every table of ``schema`` on Spark against the DuckDB work DB's: the same tables and
    columns, and the same rows both ways (EXCEPT ALL), doubles within DOUBLE_TOLERANCE."""
    con = duckdb.connect(str(work_db), read_only=True)
    out = []
    try:
        duck_tables = sorted(
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "and table_type = 'BASE TABLE'",
                [schema],
            ).fetchall()
        )
        spark_tables = _tables(spark, schema)
        for table in sorted(set(duck_tables) | set(spark_tables)):
            if table not in spark_tables or table not in duck_tables:
                where = "Spark" if table not in spark_tables else "DuckDB"
                out.append(TableComparison(table, 0, 0, 0, 0, f"missing on {where}"))
                continue
            out.append(_compare_table(spark, con, schema, table))
    finally:
        con.close()
    return out


def _compare_table(
    spark: Any, con: duckdb.DuckDBPyConnection, schema: str, table: str
) -> TableComparison:
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    frame = spark.table(f"{schema}.{table}")
    spark_columns = [c.lower() for c in frame.columns]
    names = [c for c, _ in columns]
    if sorted(spark_columns) != sorted(c.lower() for c in names):
        return TableComparison(
            table, 0, 0, 0, 0, f"columns differ: DuckDB {names}, Spark {frame.columns}"
        )
    con.register("_spark_rows", frame.toArrow())
    doubles = [c for c, t in columns if t in ("DOUBLE", "FLOAT", "REAL")]
    others = [c for c, _ in columns if c not in doubles]

    def rounded(alias: str) -> str:
        return ", ".join(
            f"round({alias}.{c}, 9) as {c}" if c in doubles else f"{alias}.{c}" for c in names
        )

    typed = ", ".join(f'cast("{c}" as {t}) as {c}' for c, t in columns)
    con.execute(f"create or replace temp table _s as select {typed} from _spark_rows")
    con.execute(f"create or replace temp table _d as select * from {schema}.{table}")
    con.execute(
        f"create or replace temp table _only_d as select {rounded('d')} from _d d "
        f"except all select {rounded('s')} from _s s"
    )
    con.execute(
        f"create or replace temp table _only_s as select {rounded('s')} from _s s "
        f"except all select {rounded('d')} from _d d"
    )
    # rows that differ only by rounding at the 9th decimal: matched within the tolerance
    match = " and ".join(
        [f"a.{c} is not distinct from b.{c}" for c in others]
        + [
            f"(a.{c} is null and b.{c} is null or abs(a.{c} - b.{c}) "
            f"<= {DOUBLE_TOLERANCE} * greatest(1, abs(a.{c})))"
            for c in doubles
        ]
    )

    def unmatched(a: str, b: str, raw_b: str) -> int:
        return con.execute(
            f"select count(*) from {a} a where not exists "
            f"(select 1 from {raw_b} b where {match or 'true'})"
        ).fetchall()[0][0]

    only_d = unmatched("_only_d", "_only_s", "_s")
    only_s = unmatched("_only_s", "_only_d", "_d")
    rows_d = con.execute("select count(*) from _d").fetchall()[0][0]
    rows_s = con.execute("select count(*) from _s").fetchall()[0][0]
    con.unregister("_spark_rows")
    problem = "" if rows_d == rows_s else f"{rows_d} rows on DuckDB, {rows_s} on Spark"
    return TableComparison(table, rows_d, rows_s, only_d, only_s, problem)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-db", type=Path, required=True, help="the DuckDB work DB")
    parser.add_argument("--as-of", required=True, help="the as-of date, YYYY-MM-DD")
    parser.add_argument("--history-days", type=int, default=730)
    parser.add_argument("--dir", type=Path, help="Spark's warehouse and dbt's files (tmp)")
    args = parser.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="kam-spark-"))
    spark = local_session(base / "warehouse")
    load_sources(spark, args.work_db, base / "sources")
    dbt_vars = {"as_of_date": args.as_of, "history_days": args.history_days}
    steps = build(spark, base / "target", dbt_vars)
    for step in steps:
        print(" ".join(step.args[:4]), "ok" if step.success else f"FAILED {step.failed()}")
    results = compare_marts(spark, args.work_db)
    for r in results:
        print(f"{r.table:32} {'same' if r.same else 'DIFFERENT'} {r.problem}")
    return 0 if all(s.success for s in steps) and all(r.same for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
