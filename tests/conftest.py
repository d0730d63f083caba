"""Shared fixtures.

PostgreSQL: tests that need the server take the ``pg_url`` fixture. It gives each
test a fresh, empty database on the server named by KAM_TEST_PG_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) and drops it afterwards. When the
server is unreachable the test is skipped with the reason, unless
KAM_REQUIRE_POSTGRES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

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
