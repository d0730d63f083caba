"""Fixtures of the dbt tests (helpers: tests/dbt/dbt_support.py).

``dbt_executable``: the venv's dbt. Without it the tests that need it (``pytestmark =
pytest.mark.usefixtures("dbt_executable")``) are skipped with the reason, unless
KAM_REQUIRE_DBT=1 (set by .ci/run, like KAM_REQUIRE_POSTGRES), which turns the skip into a
failure: in CI the dbt and history-equality tests cannot "pass" without running. Session
scope: pytest sets it up before any module fixture that builds with dbt.

``spark_engine``: Java 17+, pyspark and dbt-spark for tests/dbt/test_spark_engine.py, under
the same rule: skipped with the reason where they are missing, a failure under
KAM_REQUIRE_DBT=1 (CI builds the project on Spark too; .ci/run installs Java, `make test`
pyspark and dbt-spark).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dbt_support import DBT, dbt_missing_reason, spark_missing_reason


@pytest.fixture(scope="session")
def dbt_executable() -> Path:
    reason = dbt_missing_reason()
    if reason:
        if os.environ.get("KAM_REQUIRE_DBT") == "1":
            pytest.fail(f"KAM_REQUIRE_DBT=1 but {reason}")
        pytest.skip(reason)
    return DBT


@pytest.fixture(scope="session")
def spark_engine(dbt_executable: Path) -> None:
    reason = spark_missing_reason()
    if reason:
        if os.environ.get("KAM_REQUIRE_DBT") == "1":
            pytest.fail(f"KAM_REQUIRE_DBT=1 but {reason}")
        pytest.skip(reason)
