"""D2: the warehouse never destroys what it does not own.

* A PostgreSQL database that already has a foreign ``audit`` schema (audit-trigger logs,
  1,000 rows) or a foreign table in ``marts``: ``kam check`` refuses (exit 2, naming the
  schema and the setting to change), the publisher refuses before its swap, and the
  foreign rows are all still there; with ``KAM_PG_SCHEMA_PREFIX`` kam publishes beside it.
* A warehouse published before the ownership marker existed is still kam's (content
  recognised), so an upgrade does not refuse its own warehouse.
* ``KAM_WAREHOUSE`` a foreign DuckDB file, a file that is not DuckDB, the work DB itself or a
  folder: ``kam check`` exits 2 naming KAM_WAREHOUSE, and the publisher leaves the file
  byte-identical.
"""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path

import pytest
from faults_support import AS_OF_DATE, KAM, make_seed_work_db, pg_connect, sha256

FOREIGN_ROWS = 1000


@pytest.fixture(scope="module")
def sqlite_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny valid ERP for `kam check` (the warehouse is what is under test)."""
    from pipelines.generator import generate_demo

    out = tmp_path_factory.mktemp("ownership_demo")
    generate_demo(out, clients=60, years=2, seed=5, end_date=date(2026, 9, 30))
    return out / "erp.sqlite"


def _kam_check(tmp_path: Path, erp: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DAGSTER_", "DBT_"))}
    env.update(KAM_DATA_DIR=str(tmp_path / "data"), KAM_ERP_URL=f"sqlite:///{erp}", **settings)
    return subprocess.run([str(KAM), "check"], env=env, capture_output=True, text=True, timeout=120)


def _foreign_audit(pg_url: str) -> None:
    conn = pg_connect(pg_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("create schema audit")
            cur.execute(
                "create table audit.logged_actions (event_id bigint primary key, "
                "table_name text, action text, row_data jsonb)"
            )
            cur.execute(
                "insert into audit.logged_actions select g, 'invoices', 'U', "
                "jsonb_build_object('n', g) from generate_series(1, %s) g",
                (FOREIGN_ROWS,),
            )
            cur.execute(
                "create function audit.if_modified() returns trigger language plpgsql "
                "as $$ begin return new; end $$"
            )
    finally:
        conn.close()


def _scalar(pg_url: str, statement: str):
    conn = pg_connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchone()[0]
    finally:
        conn.close()


def _schemas(pg_url: str) -> list[str]:
    conn = pg_connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select nspname from pg_namespace where nspname not like 'pg\\_%' "
                "and nspname not in ('information_schema', 'public') order by 1"
            )
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def test_foreign_audit_schema_is_refused_by_check_and_publish_and_kept(
    pg_url: str, pg_resources, sqlite_sources: Path, tmp_path: Path
) -> None:
    from pipelines.publish.postgres import publish_postgres
    from pipelines.publish.result import PublishError

    _foreign_audit(pg_url)
    check = _kam_check(tmp_path, sqlite_sources, KAM_WAREHOUSE=pg_url)
    assert check.returncode == 2, check.stdout + check.stderr
    assert "warehouse: 1 problem(s)" in check.stdout, check.stdout
    assert "schema 'audit' exists and was not published by kam" in check.stdout
    assert "logged_actions" in check.stdout and "KAM_PG_SCHEMA_PREFIX" in check.stdout
    assert "ready:" not in check.stdout

    role = pg_resources.role_name("kam_bi_own")
    seed = make_seed_work_db(tmp_path / "seed" / "kam_work.duckdb")
    with pytest.raises(PublishError, match=r"schema 'audit' exists and was not published"):
        publish_postgres(seed, pg_url, "own-1", AS_OF_DATE, bi_role=role)
    assert _scalar(pg_url, "select count(*) from audit.logged_actions") == FOREIGN_ROWS
    assert _schemas(pg_url) == ["audit"]  # nothing half-built left behind

    # with a prefix kam publishes beside it, and check is satisfied
    publish_postgres(seed, pg_url, "own-2", AS_OF_DATE, bi_role=role, schema_prefix="kam_")
    assert _schemas(pg_url) == ["audit", "kam_audit", "kam_marts"]
    assert _scalar(pg_url, "select count(*) from audit.logged_actions") == FOREIGN_ROWS
    assert _scalar(pg_url, "select count(*) from kam_marts.dim_clients") == 3
    check = _kam_check(tmp_path, sqlite_sources, KAM_WAREHOUSE=pg_url, KAM_PG_SCHEMA_PREFIX="kam_")
    assert check.returncode == 0, check.stdout + check.stderr
    # and a second publish replaces its own schemas, never the foreign one, nor a foreign
    # schema named like a retired version
    conn = pg_connect(pg_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("create schema kam_audit__old_archive1")
        cur.execute("create table kam_audit__old_archive1.kept as select 1 as x")
    conn.close()
    publish_postgres(seed, pg_url, "own-3", AS_OF_DATE, bi_role=role, schema_prefix="kam_")
    assert _schemas(pg_url) == ["audit", "kam_audit", "kam_audit__old_archive1", "kam_marts"]
    assert _scalar(pg_url, "select run_id from kam_marts.publish_info") == "own-3"
    assert _scalar(pg_url, "select count(*) from audit.logged_actions") == FOREIGN_ROWS


def test_foreign_table_in_marts_is_refused(pg_url: str, pg_resources, tmp_path: Path) -> None:
    from pipelines.publish.postgres import publish_postgres
    from pipelines.publish.result import PublishError

    role = pg_resources.role_name("kam_bi_own")
    seed = make_seed_work_db(tmp_path / "seed" / "kam_work.duckdb")
    conn = pg_connect(pg_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("create schema marts")
        cur.execute("create table marts.finance_monthly_close as select 1 as month, 2.5 as amount")
    conn.close()
    with pytest.raises(PublishError, match=r"schema 'marts' exists .*finance_monthly_close"):
        publish_postgres(seed, pg_url, "own-1", AS_OF_DATE, bi_role=role)
    assert _scalar(pg_url, "select count(*) from marts.finance_monthly_close") == 1

    # a foreign table added to a kam warehouse published before the marker existed
    # (content recognised) is refused too, the legacy warehouse itself is accepted
    conn = pg_connect(pg_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("drop schema marts cascade")
    conn.close()
    publish_postgres(seed, pg_url, "own-2", AS_OF_DATE, bi_role=role)
    conn = pg_connect(pg_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("comment on schema marts is null")
        cur.execute("comment on schema audit is null")
    conn.close()
    publish_postgres(seed, pg_url, "own-3", AS_OF_DATE, bi_role=role)  # legacy: still kam's
    assert _scalar(pg_url, "select run_id from marts.publish_info") == "own-3"
    conn = pg_connect(pg_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("comment on schema audit is null")
        cur.execute("create table audit.logged_actions (event_id bigint)")
    conn.close()
    with pytest.raises(PublishError, match=r"schema 'audit' exists .*logged_actions"):
        publish_postgres(seed, pg_url, "own-4", AS_OF_DATE, bi_role=role)
    assert _scalar(pg_url, "select count(*) from audit.logged_actions") == 0


def test_wrong_duckdb_warehouse_forms_are_refused(sqlite_sources: Path, tmp_path: Path) -> None:
    import duckdb

    from pipelines.publish.duckdb_file import publish_duckdb
    from pipelines.publish.result import PublishError

    seed = make_seed_work_db(tmp_path / "seed" / "kam_work.duckdb")
    foreign = tmp_path / "other" / "finance.duckdb"
    foreign.parent.mkdir()
    con = duckdb.connect(str(foreign))
    con.execute("create table ledger as select range as id from range(100)")
    con.close()
    text_file = tmp_path / "other" / "notes.duckdb"
    text_file.write_text("id,amount\n1,2\n")
    folder = tmp_path / "other" / "a_folder"
    folder.mkdir()
    work_db = tmp_path / "data" / "work" / "kam_work.duckdb"
    make_seed_work_db(work_db)

    for path, expected in (
        (foreign, "is not a kam warehouse"),
        (text_file, "is not a DuckDB database"),
        (work_db, "is the work DB"),
        (folder, "is a folder"),
    ):
        before = sha256(path) if path.is_file() else None
        check = _kam_check(tmp_path, sqlite_sources, KAM_WAREHOUSE=str(path))
        assert check.returncode == 2, f"{path}: {check.stdout}{check.stderr}"
        assert f"KAM_WAREHOUSE={path}" in check.stdout and expected in check.stdout, check.stdout
        with pytest.raises(PublishError):
            publish_duckdb(work_db if path == work_db else seed, path, "own-x", AS_OF_DATE)
        if before is not None:
            assert sha256(path) == before, f"{path} was changed"
        else:
            assert path.is_dir() and not any(path.iterdir())

    # a kam warehouse at the path is replaced as before
    mine = tmp_path / "warehouse" / "kam.duckdb"
    publish_duckdb(seed, mine, "own-1", AS_OF_DATE)
    check = _kam_check(tmp_path, sqlite_sources, KAM_WAREHOUSE=str(mine))
    assert check.returncode == 0, check.stdout + check.stderr
    publish_duckdb(seed, mine, "own-2", AS_OF_DATE)
