"""pipelines.benchmark.same_marts: two warehouses compared table by table, both ways."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.benchmark.same_marts import compare, main


def _warehouse(path: Path, rows: list[tuple], run_id: str, extra_table: bool = False) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema audit")
        con.execute("create table marts.t (k varchar, v double, run_id varchar)")
        con.executemany("insert into marts.t values (?, ?, ?)", [(*r, run_id) for r in rows])
        con.execute("create table audit.runs as select 1 as n, now() as published_at")
        if extra_table:
            con.execute("create table marts.extra (x int)")
    return path


def test_same_rows_with_other_run_ids_are_the_same(tmp_path: Path, capsys) -> None:
    rows = [("a", 1.0), ("a", 1.0), ("b", None)]
    before = _warehouse(tmp_path / "b.duckdb", rows, "r1")
    after = _warehouse(tmp_path / "a.duckdb", list(reversed(rows)), "r2")
    diffs = compare(before, after)
    assert [(d.table, d.rows, d.same) for d in diffs] == [
        ("audit.runs", 1, True),
        ("marts.t", 3, True),
    ]
    assert main([str(before), str(after)]) == 0
    assert "2 tables, 0 different" in capsys.readouterr().out


def test_a_changed_duplicate_or_missing_table_is_reported(tmp_path: Path) -> None:
    before = _warehouse(tmp_path / "b.duckdb", [("a", 1.0), ("a", 1.0)], "r1")
    after = _warehouse(tmp_path / "a.duckdb", [("a", 1.0), ("a", 1.5)], "r1", extra_table=True)
    by_table = {d.table: d for d in compare(before, after)}
    assert (by_table["marts.t"].only_before, by_table["marts.t"].only_after) == (1, 1)
    assert by_table["marts.extra"].problem == "missing before"
    assert main([str(before), str(after)]) == 1


def test_doubles_rounded_on_request_only(tmp_path: Path) -> None:
    before = _warehouse(tmp_path / "b.duckdb", [("a", 0.1 + 0.2)], "r1")
    after = _warehouse(tmp_path / "a.duckdb", [("a", 0.3)], "r1")
    assert not {d.table: d for d in compare(before, after)}["marts.t"].same
    assert all(d.same for d in compare(before, after, round_doubles=9))
    assert main([str(before), str(after), "--round-doubles", "9"]) == 0


def test_the_run_clock_columns_are_left_out(tmp_path: Path) -> None:
    """A quarantine check recorded at another time is the same row (audit.quarantine_runs)."""
    paths = []
    for name, at in (("b", "2026-12-07 04:43:52"), ("a", "2026-12-07 04:51:10")):
        path = tmp_path / f"{name}.duckdb"
        with duckdb.connect(str(path)) as con:
            con.execute("create schema marts; create schema audit")
            con.execute(
                f"create table audit.q as select 'erp' as source, timestamp '{at}' as recorded_at"
            )
        paths.append(path)
    assert all(d.same for d in compare(*paths))


def test_doubles_within_a_tolerance(tmp_path: Path) -> None:
    """Within 1e-9 (relative above 1: 1e6 and 1e6 + 5e-4 are the same) is the same, also
    where rounding to 9 decimals splits two values (0.1234567895 vs 0.12345678949999); 0.5
    and 0.5 + 2e-9 are not."""
    before = _warehouse(
        tmp_path / "b.duckdb", [("a", 0.1234567895), ("b", 1e6), ("c", 0.5), ("d", None)], "r1"
    )
    after = _warehouse(
        tmp_path / "a.duckdb",
        [("a", 0.12345678949999), ("b", 1e6 * (1 + 5e-10)), ("c", 0.5 + 2e-9), ("d", None)],
        "r1",
    )
    assert not {d.table: d for d in compare(before, after, round_doubles=9)}["marts.t"].same
    diff = {d.table: d for d in compare(before, after, tolerance=1e-9)}["marts.t"]
    assert (diff.rows, diff.only_before, diff.only_after) == (4, 1, 1)  # only "c"
    assert main([str(before), str(after), "--tolerance", "1e-9"]) == 1
    close = _warehouse(
        tmp_path / "c.duckdb", [("a", 0.1234567895), ("b", 1e6), ("c", 0.5), ("d", None)], "r1"
    )
    assert all(d.same for d in compare(close, before, tolerance=1e-9))


def test_schemas_and_row_counts(tmp_path: Path) -> None:
    before = _warehouse(tmp_path / "b.duckdb", [("a", 1.0), ("a", 1.0)], "r1")
    after = _warehouse(tmp_path / "a.duckdb", [("a", 1.0)], "r1", extra_table=True)
    diffs = compare(before, after, tolerance=1e-9, schemas=("marts",))
    assert [d.table for d in diffs] == ["marts.extra", "marts.t"]  # no audit
    t = diffs[1]
    # within a tolerance a row is matched by any row of the other side (the duplicate "a"
    # is): the row counts tell the duplicate
    assert (t.only_before, t.only_after, t.problem) == (0, 0, "2 rows before, 1 after")
    assert not t.same
