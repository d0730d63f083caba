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
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(_admin_url())
    conn = psycopg2.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        connect_timeout=3,
    )
    conn.autocommit = True
    return conn


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
    from sqlalchemy.engine import make_url

    name = f"kam_test_{uuid.uuid4().hex[:12]}"
    conn = _connect_admin()
    with conn.cursor() as cur:
        cur.execute(f'create database "{name}"')
    conn.close()
    url = make_url(postgres_admin_url).set(database=name, drivername="postgresql+psycopg2")
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        conn = _connect_admin()
        with conn.cursor() as cur:
            cur.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (name,),
            )
            cur.execute(f'drop database if exists "{name}"')
        conn.close()
