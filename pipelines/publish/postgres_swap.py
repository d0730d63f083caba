"""The PostgreSQL schema swap: BI role, rename in one short transaction, drop old versions.

Swap: ``SET LOCAL lock_timeout``; rename ``<schema>`` -> ``<schema>__old_<run8>`` and
``<schema>__new_<run8>`` -> ``<schema>``; grant USAGE on the schema and SELECT on its
tables to the BI role; revoke its access to the old schema. On SQLSTATE 55P03 the swap
is rolled back to its savepoint and retried with exponential backoff. Previous versions
are dropped afterwards, each in its own short transaction (:func:`drop_previous_versions`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from pipelines.identifiers import validate_schema_name
from pipelines.publish.ownership import SCHEMA_MARKER, foreign_pg_schemas
from pipelines.publish.pg import connect_warehouse
from pipelines.publish.result import PublishError

logger = logging.getLogger(__name__)

LOCK_NOT_AVAILABLE = "55P03"
NEW_INFIX = "__new_"
OLD_INFIX = "__old_"
_ADVISORY_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('kam.publish_postgres'))"
_SWAP_SAVEPOINT = "kam_swap"
_MAX_BACKOFF_S = 5.0


class ForeignSchemaError(PublishError):
    """A schema the publish would replace exists and was not published by kam."""


def validate_schemas(schemas: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(schemas, str):
        schemas = (schemas,)
    names = tuple(validate_schema_name(s, "schemas") for s in schemas)
    if not names:
        raise ValueError("schemas: at least one schema to publish is required")
    if len(set(names)) != len(names):
        raise ValueError(f"schemas: duplicate schema names in {names!r}")
    for name in names:
        # room for "__old_" + 8 characters within PostgreSQL's 63-character limit
        if len(name) > 63 - len(OLD_INFIX) - 8:
            raise ValueError(f"schemas: schema name {name!r} is too long (at most 49 characters)")
        if NEW_INFIX in name or OLD_INFIX in name:
            raise ValueError(f"schemas: schema name {name!r} must not contain __new_/__old_")
    return names


def ensure_role(conn: Any, role: str) -> None:
    """Create the BI role (NOLOGIN) if it does not exist; its own short transaction."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if cur.fetchone() is None:
            try:
                cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                logger.info("created BI role %s (NOLOGIN)", role)
            except (psycopg2.errors.DuplicateObject, psycopg2.errors.UniqueViolation):
                conn.rollback()  # created concurrently by another publish: fine
                return
    conn.commit()


def quiet_rollback(conn: Any) -> None:
    with contextlib.suppress(psycopg2.Error):  # connection gone: the server rolled back
        conn.rollback()


def _schema_exists(cur: Any, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,))
    return cur.fetchone() is not None


def _swap_once(
    cur: Any,
    schemas: Sequence[str],
    run8: str,
    bi_role: str,
    lock_timeout_ms: int,
    info_target: str,
    readers: Mapping[str, str] | None = None,
) -> list[str]:
    cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{lock_timeout_ms}ms")))
    cur.execute(_ADVISORY_LOCK_SQL)
    # under the publish lock: what exists now is what the renames below would retire
    if problems := foreign_pg_schemas(cur, schemas, info_target):
        raise ForeignSchemaError("; ".join(problems))
    retired = []
    for schema in schemas:
        # marts to the BI role; audit (raw source rows as JSON) to its own role only
        role = sql.Identifier((readers or {}).get(schema, bi_role))
        if _schema_exists(cur, schema):
            old = f"{schema}{OLD_INFIX}{run8}"
            while _schema_exists(cur, old):  # same run published twice: pick a free name
                old = f"{schema}{OLD_INFIX}{secrets.token_hex(4)}"
            cur.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(schema), sql.Identifier(old)
                )
            )
            cur.execute(
                sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(sql.Identifier(old), role)
            )
            # checked as kam's above: marked so that drop_previous_versions may drop it
            # (even when someone overwrote the comment meanwhile)
            cur.execute(
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                    sql.Identifier(old), sql.Literal(SCHEMA_MARKER)
                )
            )
            retired.append(old)
        cur.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(f"{schema}{NEW_INFIX}{run8}"), sql.Identifier(schema)
            )
        )
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
        cur.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                sql.Identifier(schema), role
            )
        )
    return retired


def swap(
    cur: Any,
    schemas: Sequence[str],
    run8: str,
    bi_role: str,
    lock_timeout_ms: int,
    retries: int,
    info_target: str = "marts",
    readers: Mapping[str, str] | None = None,
) -> list[str]:
    """Swap the new schemas in, retrying on lock timeouts; returns the retired names.
    ``readers`` maps a schema to the role granted USAGE + SELECT on it (default: the BI
    role). Raises :class:`ForeignSchemaError` when a schema to replace is not kam's."""
    for attempt in range(retries + 1):
        cur.execute(f"SAVEPOINT {_SWAP_SAVEPOINT}")
        try:
            retired = _swap_once(cur, schemas, run8, bi_role, lock_timeout_ms, info_target, readers)
        except psycopg2.errors.LockNotAvailable as exc:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_SWAP_SAVEPOINT}")
            if attempt >= retries:
                raise PublishError(
                    f"schema swap still blocked after {attempt + 1} attempts "
                    f"(lock_timeout {lock_timeout_ms} ms): {exc.pgerror or exc}".strip()
                ) from exc
            delay = min(_MAX_BACKOFF_S, 0.1 * 2**attempt) * (1 + random.random() / 2)
            logger.warning(
                "schema swap attempt %d/%d blocked (SQLSTATE %s), retrying in %.2f s",
                attempt + 1,
                retries + 1,
                exc.pgcode,
                delay,
            )
            time.sleep(delay)
            continue
        cur.execute(f"RELEASE SAVEPOINT {_SWAP_SAVEPOINT}")
        if attempt:
            logger.info("schema swap succeeded on attempt %d", attempt + 1)
        return retired
    raise AssertionError("unreachable")  # pragma: no cover


def drop_previous_versions(
    pg_url: str, schemas: Sequence[str] = ("marts", "audit"), lock_timeout_ms: int = 2000
) -> list[str]:
    """Drop retired ``<schema>__old_*`` schemas, each in its own short transaction.

    A schema still read by a long transaction cannot be dropped within
    ``lock_timeout_ms``: it is logged and left for the next call. Returns the
    names actually dropped.
    """
    names = validate_schemas(schemas)
    if int(lock_timeout_ms) < 1:
        raise ValueError("lock_timeout_ms must be >= 1")
    pattern = re.compile(
        "^(" + "|".join(re.escape(n) for n in names) + ")" + re.escape(OLD_INFIX) + "[a-z0-9]+$"
    )
    dropped: list[str] = []
    conn = connect_warehouse(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT nspname FROM pg_namespace ORDER BY nspname")
            candidates = [r[0] for r in cur.fetchall() if pattern.match(r[0])]
            # only versions kam retired: they carry its marker comment (it follows the
            # schema through the rename); a foreign audit__old_x, or a version retired before
            # the marker existed, is left alone (logged) rather than dropped
            cur.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) "
                "AND coalesce(obj_description(oid, 'pg_namespace'), '') LIKE %s",
                (candidates, SCHEMA_MARKER.replace("%", r"\%") + "%"),
            )
            marked = {r[0] for r in cur.fetchall()}
            for name in sorted(set(candidates) - marked):
                logger.warning(
                    "schema %s looks like a retired version but has no kam marker: left in place",
                    name,
                )
            candidates = sorted(marked)
            conn.commit()
            for name in candidates:
                try:
                    cur.execute(
                        sql.SQL("SET LOCAL lock_timeout = {}").format(
                            sql.Literal(f"{int(lock_timeout_ms)}ms")
                        )
                    )
                    cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
                    conn.commit()
                    dropped.append(name)
                except psycopg2.errors.LockNotAvailable:
                    conn.rollback()
                    logger.warning("schema %s is still in use; left for the next cleanup", name)
                except psycopg2.errors.InvalidSchemaName:
                    conn.rollback()  # dropped concurrently
    finally:
        conn.close()
    return dropped
