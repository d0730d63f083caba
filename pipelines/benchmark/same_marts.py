"""Are two published DuckDB warehouses the same? Every table of the schemas ``marts`` and
``audit`` compared both ways with ``EXCEPT ALL`` (duplicates count), the columns that
legitimately differ between two runs on the same sources left out (run ids, publish, load and
record times). Used to prove that a refactoring of the dbt models leaves the marts unchanged:

    python -m pipelines.benchmark.same_marts before/kam.duckdb after/kam.duckdb

prints one line per table (rows, rows only before, rows only after) and exits 1 when any
table, column or row differs. ``--round-doubles N`` compares DOUBLE/FLOAT columns rounded to
N decimals: DuckDB's parallel sums of doubles may differ in the last bit from one build to
the next (the same project built twice differs so), which says nothing about a rule.
``--tolerance T`` (e.g. 1e-9) compares doubles within T instead (relative to the value above
1, absolute below): what two engines' doubles can be held to (pipelines.spark_build compares
the Spark build's marts with DuckDB's so); rows left over by EXCEPT ALL on doubles rounded
to -log10(T) decimals count only when no row of the other side matches them within T (a
duplicate is then told by the row counts, which differ).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

SCHEMAS = ("marts", "audit")
#: columns whose values differ between two runs on the same sources (run ids and the run's
#: clock: when it published, loaded, recorded a quarantine check, quarantined or saw a deletion)
RUN_SPECIFIC_COLUMNS = frozenset(
    {
        "run_id",
        "_run_id",
        "published_at",
        "loaded_at",
        "_loaded_at",
        "recorded_at",
        "quarantined_at",
        "deleted_at",
        "storage_version",
    }
)


@dataclass
class TableDiff:
    table: str
    rows: int
    only_before: int
    only_after: int
    problem: str = ""

    @property
    def same(self) -> bool:
        return not self.problem and self.only_before == 0 and self.only_after == 0


def _columns(
    con: duckdb.DuckDBPyConnection, db: str, schema: str, table: str
) -> list[tuple[str, str]]:
    """(name, data type) of the table's columns, in order."""
    return con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = ? "
        "and schema_name = ? and table_name = ? order by column_index",
        [db, schema, table],
    ).fetchall()


def _tables(con: duckdb.DuckDBPyConnection, db: str, schemas: Sequence[str]) -> set[str]:
    marks = ", ".join("?" for _ in schemas)
    rows = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ? "
        f"and schema_name in ({marks})",
        [db, *schemas],
    ).fetchall()
    rows += con.execute(
        "select schema_name, view_name from duckdb_views() where database_name = ? "
        f"and schema_name in ({marks})",
        [db, *schemas],
    ).fetchall()
    return {f"{schema}.{table}" for schema, table in rows}


def _is_double(data_type: str) -> bool:
    return data_type in ("DOUBLE", "FLOAT")


def _value(ref: str, data_type: str, round_doubles: int | None) -> str:
    """The compared value of a column reference (``"x"`` or ``l."x"``)."""
    if round_doubles is not None and _is_double(data_type):
        return f"round({ref}, {round_doubles})"
    return ref


def _select(name: str, data_type: str, round_doubles: int | None) -> str:
    quoted = f'"{name}"'
    return f"{_value(quoted, data_type, round_doubles)} as {quoted}"


def _unmatched(
    con: duckdb.DuckDBPyConnection,
    left: str,
    right: str,
    columns: list[tuple[str, str]],
    round_doubles: int,
    tolerance: float,
) -> int:
    """The rows of ``left`` EXCEPT ALL ``right`` (doubles rounded to ``round_doubles``) that
    come from no row of ``left`` matched by a row of ``right``: the other columns equal (NULL
    to NULL), doubles within ``tolerance`` (relative above 1). Rounding alone can split two
    doubles 1e-12 apart (0.1234567895 vs 0.1234567894999); the tolerance then joins them."""
    cols = ", ".join(_select(c, t, round_doubles) for c, t in columns)
    same_row = " and ".join(
        f'(l."{c}" is null and r."{c}" is null or abs(l."{c}" - r."{c}") '
        f'<= {tolerance!r} * greatest(1, abs(l."{c}")))'
        if _is_double(t)
        else f'l."{c}" is not distinct from r."{c}"'
        for c, t in columns
    )
    from_left = " and ".join(
        _value(f'l."{c}"', t, round_doubles) + f' is not distinct from d."{c}"' for c, t in columns
    )
    (count,) = con.execute(
        f"select count(*) from (select {cols} from {left} except all select {cols} from {right})"
        f" as d where not exists (select 1 from {left} as l join {right} as r on {same_row} "
        f"where {from_left})"
    ).fetchone()
    return count


def compare(
    before: Path,
    after: Path,
    round_doubles: int | None = None,
    tolerance: float | None = None,
    schemas: Sequence[str] = SCHEMAS,
) -> list[TableDiff]:
    """One :class:`TableDiff` per table of either warehouse in ``schemas``; doubles equal
    exactly, or rounded to ``round_doubles`` decimals, or within ``tolerance``."""
    if tolerance is not None and round_doubles is None:
        round_doubles = max(0, math.floor(-math.log10(tolerance)))
    con = duckdb.connect()
    try:
        con.execute(f"attach '{before}' as b (read_only)")
        con.execute(f"attach '{after}' as a (read_only)")
        out = []
        tables_b, tables_a = _tables(con, "b", schemas), _tables(con, "a", schemas)
        for name in sorted(tables_b | tables_a):
            if name not in tables_a or name not in tables_b:
                where = "after" if name not in tables_a else "before"
                out.append(TableDiff(name, 0, 0, 0, f"missing {where}"))
                continue
            schema, table = name.split(".")
            cols_b = [
                c for c in _columns(con, "b", schema, table) if c[0] not in RUN_SPECIFIC_COLUMNS
            ]
            cols_a = [
                c for c in _columns(con, "a", schema, table) if c[0] not in RUN_SPECIFIC_COLUMNS
            ]
            if cols_b != cols_a:
                out.append(TableDiff(name, 0, 0, 0, f"columns {cols_b} != {cols_a}"))
                continue
            cols = ", ".join(_select(c, t, round_doubles) for c, t in cols_b)
            (rows,) = con.execute(f"select count(*) from b.{name}").fetchone()
            (only_b,) = con.execute(
                f"select count(*) from (select {cols} from b.{name} "
                f"except all select {cols} from a.{name})"
            ).fetchone()
            (only_a,) = con.execute(
                f"select count(*) from (select {cols} from a.{name} "
                f"except all select {cols} from b.{name})"
            ).fetchone()
            if tolerance is not None and only_b + only_a:
                only_b = _unmatched(con, f"b.{name}", f"a.{name}", cols_b, round_doubles, tolerance)
                only_a = _unmatched(con, f"a.{name}", f"b.{name}", cols_b, round_doubles, tolerance)
            (rows_a,) = con.execute(f"select count(*) from a.{name}").fetchone()
            problem = "" if rows == rows_a else f"{rows} rows before, {rows_a} after"
            out.append(TableDiff(name, rows, only_b, only_a, problem))
        return out
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--round-doubles", type=int, default=None, metavar="N")
    parser.add_argument("--tolerance", type=float, default=None, metavar="T")
    args = parser.parse_args(argv)
    diffs = compare(args.before, args.after, args.round_doubles, args.tolerance)
    for d in diffs:
        status = "same" if d.same else f"DIFFERENT {d.problem}".strip()
        print(
            f"{d.table:45} rows {d.rows:>8}  only before {d.only_before:>6}  "
            f"only after {d.only_after:>6}  {status}"
        )
    different = [d.table for d in diffs if not d.same]
    print(
        f"{len(diffs)} tables, {len(different)} different" + (f": {different}" if different else "")
    )
    return 1 if different or not diffs else 0


if __name__ == "__main__":
    sys.exit(main())
