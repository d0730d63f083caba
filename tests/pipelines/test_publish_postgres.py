"""Publishing the work DB's marts (+ audit) to PostgreSQL by schema swap (real server)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg2
import psycopg2.errors
import pytest

import pipelines.publish.postgres as pp
from pipelines.publish.pg import pg_connect
from pipelines.publish.postgres import publish_postgres
from pipelines.publish.postgres_swap import drop_previous_versions
from pipelines.publish.postgres_types import pg_type_for
from pipelines.publish.result import PublishError

# --------------------------------------------------------------------------- helpers

MARTS_TABLES = ("dim_clients", "fct_orders", "kam_actions")


def _build_work_db(path: Path, version: int) -> None:
    """A small work DB: marts with three tables of different types, audit with one.

    ``version`` changes the data, so two publishes can be told apart.
    """
    if path.exists():
        path.unlink()
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts; create schema audit; create schema staging")
        con.execute(
            """
            create table marts.dim_clients (
                client_id varchar, client_name varchar, payment_terms_days integer,
                order_count bigint, created_at timestamp, first_order_date date,
                is_key_account boolean, credit_limit decimal(12, 2)
            )
            """
        )
        con.execute(
            "insert into marts.dim_clients values "
            "('C001', 'Acme, \"Ltd\"', 30, ?, timestamp '2024-01-02 03:04:05.123456', "
            " date '2024-02-01', true, 1234.56),"
            "('C002', '', 45, 0, null, null, false, null),"
            "('C003', null, null, null, timestamp '2025-12-31 23:59:59', date '2026-01-01', "
            " null, 0.01)",
            [10 * version],
        )
        con.execute(
            """
            create table marts.fct_orders as
            select 'O' || lpad(i::varchar, 5, '0') as order_id,
                   'C00' || (1 + i % 3)::varchar as client_id,
                   date '2026-01-01' + (i % 200)::integer as order_date,
                   (i * 1.25 + ?)::double as net_revenue,
                   (i * 0.1)::decimal(18, 2) as margin,
                   i % 7 = 0 as has_unknown_cost,
                   i::integer as line_count
            from range(?) t(i)
            """,
            [version, 200 * version],
        )
        con.execute(
            "create table marts.kam_actions as select 'C001' as client_id, "
            "'call\nback' as action, ?::integer as priority",
            [version],
        )
        con.execute(
            "create table audit.quarantine as select 'erp' as system, 'orders' as table_name, "
            "'O9' as key, 'bad date' as reason, timestamp '2026-01-01 00:00:00' as loaded_at"
        )
        con.execute("create table staging.not_published as select 1 as x")
    finally:
        con.close()


def _pg(url: str, role: str | None = None):
    conn = pg_connect(url)
    if role:
        with conn.cursor() as cur:
            cur.execute(f'SET ROLE "{role}"')
        conn.commit()
    return conn


def _query(url: str, sql: str, params: tuple = (), role: str | None = None) -> list[tuple]:
    conn = _pg(url, role)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetchall()
    finally:
        conn.close()


def _schemas(url: str) -> set[str]:
    rows = _query(
        url,
        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
        "AND nspname <> 'information_schema'",
    )
    return {r[0] for r in rows}


def _duck_rows(path: Path, schema: str, table: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"select * from {schema}.{table} order by all").fetchall()
    finally:
        con.close()


def _published_run(url: str) -> str:
    return _query(url, "SELECT run_id FROM marts.publish_info")[0][0]


@pytest.fixture
def work_db(tmp_path: Path) -> Path:
    path = tmp_path / "kam_work.duckdb"
    _build_work_db(path, version=1)
    return path


@pytest.fixture
def bi_role(pg_url: str) -> Iterator[str]:
    """A cluster-unique BI role name; the role is dropped at teardown (before the DB is)."""
    role = f"kam_bi_t{uuid.uuid4().hex[:10]}"
    yield role
    conn = _pg(pg_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if cur.fetchone():
                cur.execute(f'DROP OWNED BY "{role}"')  # its grants in the test database
                cur.execute(f'DROP ROLE "{role}"')
    finally:
        conn.close()


def _publish(work_db: Path, pg_url: str, run_id: str, bi_role: str, **kw):
    return publish_postgres(work_db, pg_url, run_id, date(2026, 9, 30), bi_role=bi_role, **kw)


def _assert_bi_reads_but_cannot_write(pg_url: str, role: str) -> None:
    conn = _pg(pg_url, role)
    try:
        with conn.cursor() as cur:
            for table in MARTS_TABLES:
                cur.execute(f"SELECT count(*) FROM marts.{table}")
                assert cur.fetchone()[0] > 0
        conn.commit()
        # audit holds source rows as JSON: the BI role has no access (issue 22; the audit
        # role, KAM_AUDIT_ROLE, reads it)
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT count(*) FROM audit.quarantine")
        conn.rollback()
        for statement in (
            "INSERT INTO marts.kam_actions VALUES ('C9', 'x', 1)",
            "UPDATE marts.dim_clients SET client_name = 'x'",
            "DELETE FROM marts.fct_orders",
            "CREATE TABLE marts.evil (x int)",
            "CREATE SCHEMA evil",
            # PostgreSQL >= 15: PUBLIC has no CREATE on schema public (see module docs)
            *(["CREATE TABLE public.evil (x int)"] if conn.server_version >= 150000 else []),
        ):
            with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
            conn.rollback()
    finally:
        conn.close()
    # the role has USAGE on the published marts and on nothing else of ours (not audit)
    rows = _query(
        pg_url,
        "SELECT nspname FROM pg_namespace WHERE (nspname LIKE 'marts%%' OR nspname LIKE 'audit%%') "
        "AND has_schema_privilege(%s, oid, 'USAGE')",
        (role,),
    )
    assert {r[0] for r in rows} == {"marts"}


# --------------------------------------------------------------------------- tests


@pytest.mark.postgres
def test_publish_and_read_back_types_and_values(work_db: Path, pg_url: str, bi_role: str) -> None:
    result = _publish(work_db, pg_url, "run-1111aaaa-x", bi_role)

    assert result.tables == {
        "marts.dim_clients": 3,
        "marts.fct_orders": 200,
        "marts.kam_actions": 1,
        "audit.quarantine": 1,
    }
    assert result.version == "run1111a"
    assert "staging" not in _schemas(pg_url)
    assert _schemas(pg_url) == {"public", "marts", "audit"}

    types = dict(
        ((t, c), (dt, p, s))
        for t, c, dt, p, s in _query(
            pg_url,
            "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale "
            "FROM information_schema.columns WHERE table_schema = 'marts'",
        )
    )
    assert types[("dim_clients", "client_id")][0] == "text"
    assert types[("dim_clients", "payment_terms_days")][0] == "integer"
    assert types[("dim_clients", "order_count")][0] == "bigint"
    assert types[("dim_clients", "created_at")][0] == "timestamp without time zone"
    assert types[("dim_clients", "first_order_date")][0] == "date"
    assert types[("dim_clients", "is_key_account")][0] == "boolean"
    assert types[("dim_clients", "credit_limit")] == ("numeric", 12, 2)
    assert types[("fct_orders", "net_revenue")][0] == "double precision"
    assert types[("fct_orders", "margin")] == ("numeric", 18, 2)

    for schema, table in [("marts", t) for t in MARTS_TABLES] + [("audit", "quarantine")]:
        published = _query(pg_url, f"SELECT * FROM {schema}.{table} ORDER BY 1, 2, 3")
        assert published == _duck_rows(work_db, schema, table), f"{schema}.{table}"

    clients = _query(pg_url, "SELECT * FROM marts.dim_clients ORDER BY client_id")
    assert clients[0] == (
        "C001",
        'Acme, "Ltd"',
        30,
        10,
        datetime(2024, 1, 2, 3, 4, 5, 123456),
        date(2024, 2, 1),
        True,
        Decimal("1234.56"),
    )
    assert clients[1][1] == ""  # empty string stays empty, not NULL
    assert clients[2][1] is None
    assert _query(pg_url, "SELECT action FROM marts.kam_actions") == [("call\nback",)]

    info = _query(pg_url, "SELECT run_id, as_of_date, table_count FROM marts.publish_info")
    assert info == [("run-1111aaaa-x", date(2026, 9, 30), 4)]
    per_table = _query(
        pg_url, "SELECT schema_name || '.' || table_name, row_count FROM marts.publish_tables"
    )
    assert dict(per_table) == result.tables


@pytest.mark.postgres
def test_publish_twice_replaces_version_and_drops_old_schema(
    work_db: Path, pg_url: str, bi_role: str
) -> None:
    _publish(work_db, pg_url, "run-aaaa0001", bi_role)
    assert _query(pg_url, "SELECT count(*) FROM marts.fct_orders") == [(200,)]
    _assert_bi_reads_but_cannot_write(pg_url, bi_role)

    _build_work_db(work_db, version=2)
    result = _publish(work_db, pg_url, "run-bbbb0002", bi_role)

    assert result.tables["marts.fct_orders"] == 400
    assert _query(pg_url, "SELECT count(*) FROM marts.fct_orders") == [(400,)]
    assert _query(pg_url, "SELECT priority FROM marts.kam_actions") == [(2,)]
    assert _published_run(pg_url) == "run-bbbb0002"
    assert _schemas(pg_url) == {"public", "marts", "audit"}  # no __new_/__old_ left
    _assert_bi_reads_but_cannot_write(pg_url, bi_role)

    # the same run published again (a retried run) also works and cleans up
    _publish(work_db, pg_url, "run-bbbb0002", bi_role)
    assert _schemas(pg_url) == {"public", "marts", "audit"}


@pytest.mark.postgres
def test_bi_role_is_created_and_sees_no_unpublished_schema_during_load(
    work_db: Path, pg_url: str, bi_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _query(pg_url, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (bi_role,)) == [(0,)]
    seen_during_load: list[list[tuple]] = []
    original_audit = pp._audit

    def audit_and_look(cur, target_schema, plans, extra=()):
        # another session (as the BI role) while the new schema is fully loaded
        seen_during_load.append(
            _query(
                pg_url,
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE '%%\\_\\_new\\_%%'",
                role=bi_role,
            )
        )
        return original_audit(cur, target_schema, plans, extra)

    monkeypatch.setattr(pp, "_audit", audit_and_look)
    _publish(work_db, pg_url, "run-cccc0003", bi_role)

    assert len(seen_during_load) == 2  # marts and audit were audited
    assert seen_during_load == [[], []]
    assert _query(pg_url, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (bi_role,)) == [
        (False,)
    ]
    _assert_bi_reads_but_cannot_write(pg_url, bi_role)


@pytest.mark.postgres
def test_long_reader_does_not_block_swap_only_the_drop(
    work_db: Path, pg_url: str, bi_role: str
) -> None:
    _publish(work_db, pg_url, "run-dddd0004", bi_role)
    reader = _pg(pg_url)  # READ COMMITTED, in a transaction holding AccessShare
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM marts.fct_orders")
            assert cur.fetchone() == (200,)

            _build_work_db(work_db, version=2)
            started = time.perf_counter()
            _publish(work_db, pg_url, "run-eeee0005", bi_role, lock_timeout_ms=300)
            assert time.perf_counter() - started < 30

            # the swap went through; the old schema is kept because the reader holds it
            assert _published_run(pg_url) == "run-eeee0005"
            assert "marts__old_runeeee0" in _schemas(pg_url)
            # the reader keeps working, and its next statement sees the new version
            cur.execute("SELECT count(*) FROM marts.fct_orders")
            assert cur.fetchone() == (400,)
            cur.execute("SELECT count(*) FROM marts__old_runeeee0.fct_orders")
            assert cur.fetchone() == (200,)
            # cleanup while the reader is still open: still blocked, nothing dropped
            assert "marts__old_runeeee0" not in drop_previous_versions(pg_url, lock_timeout_ms=200)
        reader.commit()
    finally:
        reader.close()
    assert drop_previous_versions(pg_url, lock_timeout_ms=200) == ["marts__old_runeeee0"]
    assert _schemas(pg_url) == {"public", "marts", "audit"}


@pytest.mark.postgres
def test_swap_retries_on_lock_timeout_and_completes_after_blocker_commits(
    work_db: Path, pg_url: str, bi_role: str, caplog: pytest.LogCaptureFixture
) -> None:
    _publish(work_db, pg_url, "run-ffff0006", bi_role)
    # a transaction that changed the published schema (e.g. an admin's grant) and
    # stays open: it holds the schema's catalog row, so the rename has to wait
    blocker = _pg(pg_url)
    with blocker.cursor() as cur:
        cur.execute("COMMENT ON SCHEMA marts IS 'held by a long transaction'")
        cur.execute("SELECT count(*) FROM marts.fct_orders")
    release = threading.Timer(1.0, blocker.commit)
    _build_work_db(work_db, version=2)
    caplog.set_level(logging.WARNING, logger=pp.__name__)
    release.start()
    try:
        started = time.perf_counter()
        result = _publish(work_db, pg_url, "run-0007abcd", bi_role, lock_timeout_ms=150, retries=10)
        elapsed = time.perf_counter() - started
    finally:
        release.join()
        blocker.close()

    retries = [r for r in caplog.records if "schema swap attempt" in r.getMessage()]
    assert len(retries) >= 1
    assert all("55P03" in r.getMessage() for r in retries)
    assert elapsed >= 1.0  # it could only complete once the blocker committed
    assert result.tables["marts.fct_orders"] == 400
    assert _published_run(pg_url) == "run-0007abcd"
    assert _schemas(pg_url) == {"public", "marts", "audit"}
    _assert_bi_reads_but_cannot_write(pg_url, bi_role)


@pytest.mark.postgres
def test_swap_gives_up_after_retries_and_leaves_published_version(
    work_db: Path, pg_url: str, bi_role: str
) -> None:
    _publish(work_db, pg_url, "run-1008aaaa", bi_role)
    blocker = _pg(pg_url)
    try:
        with blocker.cursor() as cur:
            cur.execute("COMMENT ON SCHEMA audit IS 'held'")
        _build_work_db(work_db, version=2)
        with pytest.raises(PublishError, match="3 attempts"):
            _publish(work_db, pg_url, "run-2009bbbb", bi_role, lock_timeout_ms=100, retries=2)
    finally:
        blocker.rollback()
        blocker.close()
    assert _published_run(pg_url) == "run-1008aaaa"
    assert _query(pg_url, "SELECT count(*) FROM marts.fct_orders") == [(200,)]
    assert _schemas(pg_url) == {"public", "marts", "audit"}
    _assert_bi_reads_but_cannot_write(pg_url, bi_role)


@pytest.mark.postgres
def test_failure_mid_load_leaves_published_marts_unchanged(
    work_db: Path, pg_url: str, bi_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _publish(work_db, pg_url, "run-3010cccc", bi_role)
    before = _query(pg_url, "SELECT * FROM marts.fct_orders ORDER BY order_id")

    calls = {"n": 0}
    original_copy = pp._copy_table

    def copy_then_fail(cur, duck, target_schema, plan):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash after the first table")
        return original_copy(cur, duck, target_schema, plan)

    monkeypatch.setattr(pp, "_copy_table", copy_then_fail)
    _build_work_db(work_db, version=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _publish(work_db, pg_url, "run-4011dddd", bi_role)

    assert calls["n"] == 2
    assert _published_run(pg_url) == "run-3010cccc"
    assert _query(pg_url, "SELECT * FROM marts.fct_orders ORDER BY order_id") == before
    assert _schemas(pg_url) == {"public", "marts", "audit"}  # no marts__new_ left
    _assert_bi_reads_but_cannot_write(pg_url, bi_role)
    # the work DB was released: it can be opened read-write again
    duckdb.connect(str(work_db)).close()


@pytest.mark.postgres
def test_audit_mismatch_refuses_to_swap(
    work_db: Path, pg_url: str, bi_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _publish(work_db, pg_url, "run-5012eeee", bi_role)
    original_export = pp._export_sql

    def lose_a_row(plan):
        text = original_export(plan)
        return text + " limit 199" if plan.name == "fct_orders" else text

    monkeypatch.setattr(pp, "_export_sql", lose_a_row)
    _build_work_db(work_db, version=2)
    with pytest.raises(PublishError, match="fct_orders"):
        _publish(work_db, pg_url, "run-6013ffff", bi_role)
    assert _published_run(pg_url) == "run-5012eeee"
    assert _schemas(pg_url) == {"public", "marts", "audit"}


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"schemas": ("marts; drop table x",)}, "schemas"),
        ({"schemas": ("marts", "Audit")}, "schemas"),
        ({"bi_role": 'Robert"); --'}, "bi_role"),
        ({"bi_role": "public"}, "bi_role"),
    ],
)
def test_invalid_identifiers_raise_before_any_sql(
    work_db: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict, setting: str
) -> None:
    def no_sql(*args, **kw):
        raise AssertionError("no connection may be opened for invalid settings")

    monkeypatch.setattr(pp.psycopg2, "connect", no_sql)
    monkeypatch.setattr(pp.duckdb, "connect", no_sql)
    with pytest.raises(ValueError, match=setting):
        publish_postgres(
            work_db, "postgresql://postgres@127.0.0.1/x", "run-1", date(2026, 9, 30), **kwargs
        )
    with pytest.raises(ValueError, match="schemas"):
        drop_previous_versions("postgresql://postgres@127.0.0.1/x", ("x y",))


def test_bad_url_error_masks_the_password(work_db: Path) -> None:
    url = "postgresql://postgres:secret@127.0.0.1:1/x"
    with pytest.raises(PublishError) as info:
        publish_postgres(work_db, url, "run-1", date(2026, 9, 30), bi_role="kam_bi_unused")
    message = str(info.value)
    assert "secret" not in message
    assert "***" in message
    with pytest.raises(PublishError) as info2:
        drop_previous_versions(url)
    assert "secret" not in str(info2.value) and "***" in str(info2.value)


@pytest.mark.parametrize(
    ("duckdb_type", "expected"),
    [
        ("VARCHAR", "text"),
        ("BIGINT", "bigint"),
        ("INTEGER", "integer"),
        ("DOUBLE", "double precision"),
        ("DECIMAL(18,2)", "numeric(18,2)"),
        ("DATE", "date"),
        ("TIMESTAMP", "timestamp"),
        ("TIMESTAMP WITH TIME ZONE", "timestamptz"),
        ("BOOLEAN", "boolean"),
        ("UUID", "uuid"),
        ("BLOB", "bytea"),
        ("INTEGER[]", "text"),
    ],
)
def test_type_mapping(duckdb_type: str, expected: str) -> None:
    assert pg_type_for(duckdb_type)[0] == expected
