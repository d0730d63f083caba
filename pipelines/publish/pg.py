"""PostgreSQL connections from SQLAlchemy-style URLs (the one place that calls psycopg2.connect).

Used by the PostgreSQL publisher, the benchmarks and the test fixtures: :func:`pg_connect`
(any database), :func:`connect_warehouse` (errors masked, as :class:`PublishError`),
:func:`create_database` / :func:`drop_database` (on an admin connection).
"""

from __future__ import annotations

from typing import Any

import psycopg2
from sqlalchemy.engine import make_url

from pipelines.publish.result import PublishError
from pipelines.secrets import mask_text, mask_url, url_secrets


def connect_params(url: str, *, dbname: str | None = None, **defaults: Any) -> dict[str, Any]:
    """psycopg2 keyword arguments for ``url``: ``defaults`` < the URL's query < its parts.

    Host and port come from the URL or default to 127.0.0.1:5432 (never from the query);
    ``dbname`` replaces the URL's database.
    """
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"not a postgresql:// URL (driver {parsed.drivername!r})")
    params: dict[str, Any] = dict(defaults)
    params.update({k: v for k, v in parsed.query.items() if isinstance(v, str)})
    parts = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": dbname or parsed.database,
    }
    params.update({k: v for k, v in parts.items() if v is not None})
    return {k: v for k, v in params.items() if v is not None}


def pg_connect(
    url: str, *, autocommit: bool = False, dbname: str | None = None, **defaults: Any
) -> Any:
    """A psycopg2 connection to ``url`` (or to database ``dbname`` on its server)."""
    conn = psycopg2.connect(**connect_params(url, dbname=dbname, **defaults))
    conn.autocommit = autocommit
    return conn


def connect_warehouse(pg_url: str) -> Any:
    """The publisher's connection; any failure is a :class:`PublishError`, URL masked."""
    try:
        return pg_connect(pg_url, connect_timeout=10, application_name="kam-publish")
    except Exception as exc:
        detail = mask_text(f"{type(exc).__name__}: {exc}".strip(), url_secrets(pg_url))
        raise PublishError(f"cannot connect to {mask_url(pg_url)}: {detail}") from None


def admin_connect(admin_url: str, connect_timeout: int = 5) -> Any:
    """An autocommit connection for creating and dropping databases (user and database
    default to ``postgres``)."""
    return pg_connect(
        admin_url,
        autocommit=True,
        user="postgres",
        dbname=make_url(admin_url).database or "postgres",
        connect_timeout=connect_timeout,
    )


def database_url(admin_url: str, name: str) -> str:
    """The SQLAlchemy URL (psycopg2 driver) of database ``name`` on the admin URL's server."""
    url = make_url(admin_url).set(database=name, drivername="postgresql+psycopg2")
    return url.render_as_string(hide_password=False)


def create_database(admin_url: str, name: str, connect_timeout: int = 5) -> str:
    """Create the empty database ``name``; returns its URL."""
    conn = admin_connect(admin_url, connect_timeout)
    try:
        with conn.cursor() as cur:
            cur.execute(f'create database "{name}"')
    finally:
        conn.close()
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str, connect_timeout: int = 5) -> None:
    """Drop database ``name`` if it exists, ending the sessions still connected to it."""
    conn = admin_connect(admin_url, connect_timeout)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (name,),
            )
            cur.execute(f'drop database if exists "{name}"')
    finally:
        conn.close()
