"""pipelines.publish.read: the one read-only reader of the published warehouse (the brief
and `kam evaluate` use it), errors raised as the caller's class with credentials masked."""

from __future__ import annotations

import socket
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.read import read_warehouse


class _CallerError(RuntimeError):
    pass


def _warehouse(path: Path) -> str:
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.publish_info as "
        "select 'run-7' as run_id, date '2026-09-30' as as_of_date"
    )
    con.close()
    return str(path)


def test_each_query_gives_its_columns_and_rows_in_order(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "wh.duckdb")
    info, numbers = read_warehouse(
        warehouse,
        ["select run_id, as_of_date from marts.publish_info", "select 1 as a, 2 as b"],
        error=_CallerError,
    )
    assert info.columns == ["run_id", "as_of_date"]
    assert info.rows == [("run-7", date(2026, 9, 30))]
    assert numbers.dicts() == [{"a": 1, "b": 2}]


def test_the_session_is_read_only_and_errors_are_the_callers(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "wh.duckdb")
    with pytest.raises(_CallerError, match="cannot be read"):
        read_warehouse(warehouse, ["delete from marts.publish_info"], error=_CallerError)
    [still] = read_warehouse(
        warehouse, ["select count(*) from marts.publish_info"], error=_CallerError
    )
    assert still.rows == [(1,)]
    with pytest.raises(_CallerError, match="no published warehouse at .*none.duckdb"):
        read_warehouse(str(tmp_path / "none.duckdb"), ["select 1"], error=_CallerError)


def test_a_postgres_warehouse_that_cannot_be_reached_is_named_without_its_password() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://reader:s3cret-pw@127.0.0.1:{port}/warehouse"
    with pytest.raises(_CallerError) as raised:
        read_warehouse(url, ["select 1"], error=_CallerError)
    text = str(raised.value)
    assert text.startswith("cannot connect to the warehouse postgresql://reader:***@127.0.0.1")
    assert "s3cret-pw" not in text
