"""Weak point: history did not follow corrections. An order moved back a year and an old
order deleted at the source, then a normal run: 3,753 of 3,986 history rows and 25
transitions differed from a clean run (exit 0).

Real dbt on 60 generated clients: the run of D, its fingerprints recorded; then at the
source an old order is moved back a year and another old order is deleted; then the run
of D+1. Its history (the compared columns of every date of the window), stage changes and
lifecycle stages must equal a clean build of the corrected data. As a control, the same
run without the correction (what the pipeline did before) differs.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from test_history_interrupted import D, _dbt, build_last_run

from pipelines.history_corrections import (
    find_correction,
    find_correction_in_child,
    record_fingerprints,
    record_fingerprints_in_child,
)

NEXT = D + timedelta(days=1)
HISTORY_DAYS = 365
WINDOW_START = NEXT - timedelta(days=HISTORY_DAYS - 1)
COMPARED = (
    "as_of_date, client_id, lifecycle_stage, status_group, is_at_risk, is_churned, "
    "has_volume_drop, abc_class"
)


def _correct_the_source(work: Path) -> tuple[str, str]:
    """Move one old completed order back a year, delete another (with its lines)."""
    con = duckdb.connect(str(work))
    try:
        picked = con.execute(
            "select order_id from raw_erp.orders where status = 'completed' "
            "and order_date between ? and ? order by order_id limit 2",
            [D - timedelta(days=200), D - timedelta(days=150)],
        ).fetchall()
        moved, deleted = picked[0][0], picked[1][0]
        con.execute(
            "update raw_erp.orders set order_date = order_date - 365 where order_id = ?", [moved]
        )
        con.execute("delete from raw_erp.order_lines where order_id = ?", [deleted])
        con.execute("delete from raw_erp.orders where order_id = ?", [deleted])
    finally:
        con.close()
    return moved, deleted


def _history(work: Path) -> list[tuple]:
    con = duckdb.connect(str(work / "work.duckdb"), read_only=True)
    try:
        return con.execute(
            f"select {COMPARED} from marts.client_status_history where as_of_date >= ? "
            "order by as_of_date, client_id",
            [WINDOW_START],
        ).fetchall()
    finally:
        con.close()


def _changes(work: Path) -> list[tuple]:
    con = duckdb.connect(str(work / "work.duckdb"), read_only=True)
    try:
        return con.execute(
            "select client_id, from_stage, to_stage, transition_date "
            "from marts.client_stage_transitions "
            "where from_stage is not null and transition_date > ? order by 1, 4",
            [WINDOW_START],
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("corrections")
    built = build_last_run(base / "built")
    record_fingerprints(built / "work.duckdb")
    out = {}
    for name in ("followed", "plain"):
        out[name] = base / name
        out[name].mkdir()
        shutil.copy(built / "work.duckdb", out[name] / "work.duckdb")
        _correct_the_source(out[name] / "work.duckdb")
    clean = build_last_run(base / "clean", dbt=False)
    _correct_the_source(clean / "work.duckdb")
    _dbt(clean, NEXT, "build", "--select", "+clients.marts", history_days=HISTORY_DAYS)
    out["clean"] = clean
    return out


def test_history_follows_a_moved_and_a_deleted_order(runs: dict[str, Path]) -> None:
    followed = runs["followed"]
    # as the dbt step runs it: in a child process, DuckDB capped (KAM_DUCKDB_MEMORY_LIMIT)
    correction = find_correction_in_child(followed / "work.duckdb", NEXT, HISTORY_DAYS, "64MB")
    assert correction == find_correction(followed / "work.duckdb", NEXT, HISTORY_DAYS)
    # the moved order's new date is before the window: rebuilt from the window's start
    assert correction.rebuild_from == WINDOW_START, correction
    assert (correction.changed, correction.removed) == (1, 1), correction
    _dbt(
        followed,
        NEXT,
        "build",
        "--select",
        "+clients.marts",
        history_days=HISTORY_DAYS,
        rebuild_from=correction.rebuild_from.isoformat(),
    )
    assert record_fingerprints_in_child(followed / "work.duckdb", "64MB") > 0
    assert find_correction(followed / "work.duckdb", NEXT, HISTORY_DAYS).rebuild_from is None

    # the control: the next run as the pipeline made it before
    _dbt(runs["plain"], NEXT, "build", "--select", "+clients.marts", history_days=HISTORY_DAYS)
    clean_history, clean_changes = _history(runs["clean"]), _changes(runs["clean"])
    assert _history(runs["plain"]) != clean_history, "the correction changed nothing"

    history = _history(followed)
    wrong = sorted(set(history) ^ set(clean_history))[:5]
    assert history == clean_history, f"{len(set(history) ^ set(clean_history))} rows: {wrong}"
    changes = _changes(followed)
    assert changes == clean_changes, sorted(set(changes) ^ set(clean_changes))[:5]


def test_no_change_means_no_rebuild(runs: dict[str, Path]) -> None:
    clean = runs["clean"] / "work.duckdb"
    record_fingerprints(clean)
    assert find_correction(clean, NEXT + timedelta(days=1), HISTORY_DAYS).rebuild_from is None
    assert date.today() > D  # (the dates above are in the past)


def test_a_failing_child_fails_the_step(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="history corrections \\(record\\) failed"):
        record_fingerprints_in_child(tmp_path / "no_such_dir" / "work.duckdb", "64MB")


def test_a_cap_that_cannot_be_applied_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    work = tmp_path / "work.duckdb"
    # the work DB already open in this process, without a memory limit (DuckDB's default)
    open_here = duckdb.connect(str(work))
    try:
        in_effect = open_here.execute("select current_setting('memory_limit')").fetchall()[0][0]
        with caplog.at_level("WARNING", logger="pipelines.history_corrections"):
            assert record_fingerprints(work, "64MB") == 0  # no valid raw layer yet
        [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert "already open in this process" in warning
        assert f"memory limit {in_effect} applies, not 64MB" in warning
        caplog.clear()
        with caplog.at_level("WARNING", logger="pipelines.history_corrections"):
            record_fingerprints(work)  # no cap asked: nothing to say
        assert not caplog.records
    finally:
        open_here.close()
    # not open elsewhere: the cap applies, silently
    with caplog.at_level("WARNING", logger="pipelines.history_corrections"):
        assert record_fingerprints(work, "64MB") == 0
    assert not caplog.records
