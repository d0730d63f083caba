"""Weak point: the BI role read ``audit`` (raw source rows as JSON, deleted rows with their
values, kept forever).

* A login role in ``KAM_BI_ROLE`` reads ``marts`` and is refused ``audit``; a login role in
  the audit role (``KAM_AUDIT_ROLE``) reads ``audit``.
* ``audit.deleted_rows`` keeps a row deleted at the source for ``KAM_AUDIT_RETENTION_DAYS``
  after the run that found it gone, not forever.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import psycopg2
import pytest
from faults_support import AS_OF_DATE, make_seed_work_db, pg_connect


def _grant_login(pg_resources, pg_url: str, group: str) -> str:
    user, password = pg_resources.create_login_role("kam_reader")
    pg_resources.execute(pg_url.rsplit("/", 1)[1], f'grant "{group}" to "{user}"')
    return pg_resources.url(pg_url.rsplit("/", 1)[1], user, password)


def test_bi_role_reads_marts_only_audit_role_reads_audit(
    pg_url: str, pg_resources, tmp_path: Path
) -> None:
    from pipelines.publish.postgres import publish_postgres

    work = make_seed_work_db(tmp_path / "seed" / "kam_work.duckdb")
    con = duckdb.connect(str(work))
    con.execute("create schema audit")
    con.execute(
        "create table audit.quarantine as select 'erp' as system, 'clients' as source_table, "
        "'client_id=C-9' as record_key, '{\"iban\": \"DE00 1234\"}' as row_json"
    )
    con.close()
    bi = pg_resources.role_name("kam_bi_acc")
    auditors = pg_resources.role_name("kam_audit_acc")
    publish_postgres(work, pg_url, "acc-1", AS_OF_DATE, bi_role=bi, audit_role=auditors)

    bi_url = _grant_login(pg_resources, pg_url, bi)
    conn = pg_connect(bi_url)
    try:
        with conn.cursor() as cur:
            cur.execute("select count(*) from marts.dim_clients")
            assert cur.fetchone()[0] == 3
        conn.commit()
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("select row_json from audit.quarantine")
    finally:
        conn.close()

    audit_url = _grant_login(pg_resources, pg_url, auditors)
    conn = pg_connect(audit_url)
    try:
        with conn.cursor() as cur:
            cur.execute("select record_key from audit.quarantine")
            assert cur.fetchall() == [("client_id=C-9",)]
    finally:
        conn.close()


def test_deleted_rows_are_kept_for_the_retention_days(tmp_path: Path) -> None:
    from pipelines.extract.raw_schema import DELETED_ROWS, ensure_raw_schema
    from pipelines.gate.quarantine import apply_quarantine

    today = date(2026, 9, 30)
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    try:
        ensure_raw_schema(con)
        for key, days_ago in (("O-old", 400), ("O-edge", 29), ("O-new", 1)):
            con.execute(
                f"insert into {DELETED_ROWS} values ('erp', 'orders', ?, '{{}}', 'r0', ?)",
                [key, datetime.combine(today, datetime.min.time()) - timedelta(days=days_ago)],
            )
        apply_quarantine(con, "r1", today, today=today, deleted_retention_days=0)
        keys = "select record_key from audit.deleted_rows order by 1"
        assert [r[0] for r in con.execute(keys).fetchall()] == ["O-edge", "O-new", "O-old"]
        apply_quarantine(con, "r2", today, today=today, deleted_retention_days=30)
        assert [r[0] for r in con.execute(keys).fetchall()] == ["O-edge", "O-new"]
    finally:
        con.close()
