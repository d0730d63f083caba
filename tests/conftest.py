"""Shared fixtures.

PostgreSQL: tests that need the server take the ``pg_url`` fixture. It gives each
test a fresh, empty database on the server named by KAM_TEST_PG_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) and drops it afterwards. When the
server is unreachable the test is skipped with the reason, unless
KAM_REQUIRE_POSTGRES=1 (set by .ci/run), which turns the skip into a failure.

dbt: ``dbt_target`` is the one dbt manifest of the session (the Dagster and fault tests
load the code location from it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_url() -> str:
    return os.environ.get("KAM_TEST_PG_URL", DEFAULT_PG_URL)


def _connect_admin():
    from pipelines.publish.pg import admin_connect

    return admin_connect(_admin_url(), connect_timeout=3)


def _postgres_unavailable_reason() -> str | None:
    try:
        conn = _connect_admin()
    except Exception as exc:  # any failure to connect means "not available"
        return f"PostgreSQL not reachable at KAM_TEST_PG_URL ({type(exc).__name__}: {exc})".strip()
    conn.close()
    return None


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    reason = _postgres_unavailable_reason()
    if reason:
        if os.environ.get("KAM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"KAM_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    return _admin_url()


@pytest.fixture
def pg_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test; its SQLAlchemy URL."""
    from pipelines.publish.pg import create_database, drop_database

    name = f"kam_test_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_admin_url, name, connect_timeout=3)
    try:
        yield url
    finally:
        drop_database(postgres_admin_url, name, connect_timeout=3)


REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dbt target folder holding the manifest, prepared once per session as in production
    (`dagster-dbt project prepare-and-package`, never at import), outside dbt/target."""
    base = tmp_path_factory.mktemp("dbt")
    target = base / "target"
    (base / "parse_only").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DBT_", "DAGSTER_"))}
    env.update(
        DBT_TARGET_PATH=str(target),
        # named like a data dir's work DB: the packaged partial parse then seeds the first
        # run of every data dir (pipelines/dbt_partial_parse.py), as after `make setup`
        KAM_WORK_DB=str(base / "parse_only" / "kam_work.duckdb"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    proc = subprocess.run(
        [
            str(BIN / "dagster-dbt"),
            "project",
            "prepare-and-package",
            "--file",
            str(REPO / "kam_assets" / "dbt_project.py"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    manifest = target / "manifest.json"
    assert proc.returncode == 0 and manifest.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return target
