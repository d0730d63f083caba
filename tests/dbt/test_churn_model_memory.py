"""The churn model's DuckDB memory cut (int_clients__churn_model.py, dbt/models/clients).

While the model's pandas / scikit-learn frames are held, DuckDB's memory limit (global to the
dbt process's database) is cut to a share of itself and restored afterwards, also when the
scoring fails; outside dbt-duckdb (no session) nothing is touched.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

MODEL = (
    Path(__file__).resolve().parents[2]
    / "dbt"
    / "models"
    / "clients"
    / "intermediate"
    / "int_clients__churn_model.py"
)


@pytest.fixture(scope="module")
def churn_model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("int_clients__churn_model", MODEL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: DuckDB prints its limit to 0.1 MiB ('953.6 MiB' for 1GB), the only form it gives back, so
#: the restored limit is the one read before to that precision
PRINTED = 0.1 * 2**20


def _limit(con: duckdb.DuckDBPyConnection) -> str:
    (value,) = con.execute("select current_setting('memory_limit')").fetchone()
    return value


def test_bytes_reads_duckdb_sizes(churn_model: ModuleType) -> None:
    assert churn_model._bytes("1GB") == 10**9
    assert churn_model._bytes("953.6 MiB") == int(953.6 * 2**20)
    assert churn_model._bytes("512 KiB") == 512 * 2**10
    assert churn_model._bytes("unlimited") is None


def test_limit_cut_while_scoring_and_restored(churn_model: ModuleType) -> None:
    con = duckdb.connect(config={"memory_limit": "1GB"})
    try:
        before = _limit(con)
        full = churn_model._bytes(before)
        with churn_model.duckdb_memory_lowered(con):
            during = churn_model._bytes(_limit(con))
            # a second cursor (dbt's other thread) sees the cut: the setting is global
            assert churn_model._bytes(_limit(con.cursor())) == during
        assert during == pytest.approx(full * churn_model.DUCKDB_SHARE_WHILE_SCORING, rel=0.01)
        assert churn_model._bytes(_limit(con)) == pytest.approx(full, abs=PRINTED)
    finally:
        con.close()


def test_limit_restored_when_scoring_fails(churn_model: ModuleType) -> None:
    con = duckdb.connect(config={"memory_limit": "1GB"})
    try:
        before = _limit(con)
        with pytest.raises(RuntimeError), churn_model.duckdb_memory_lowered(con):
            raise RuntimeError("the fit failed")
        restored = churn_model._bytes(_limit(con))
        assert restored == pytest.approx(churn_model._bytes(before), abs=PRINTED)
    finally:
        con.close()


def test_no_session_outside_dbt(churn_model: ModuleType) -> None:
    with churn_model.duckdb_memory_lowered(None):
        pass
