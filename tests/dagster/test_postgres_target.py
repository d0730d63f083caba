"""End to end: the daily job publishing to a PostgreSQL warehouse (KAM_WAREHOUSE URL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_support import step_failures

pytestmark = pytest.mark.slow

AS_OF = "2026-09-30"


def _pg(url: str):
    from pipelines.publish.pg import pg_connect

    return pg_connect(url, autocommit=True)


@pytest.fixture
def bi_role(pg_url: str) -> Iterator[str]:
    """A BI role name unique to the test; dropped (with its grants) afterwards."""
    role = f"kam_bi_{uuid.uuid4().hex[:10]}"
    yield role
    conn = _pg(pg_url)
    with conn.cursor() as cur:
        cur.execute("select 1 from pg_roles where rolname = %s", (role,))
        if cur.fetchone():
            cur.execute(f'drop owned by "{role}"')
            cur.execute(f'drop role "{role}"')
    conn.close()


def _published_version(conn) -> str:
    with conn.cursor() as cur:
        cur.execute("select run_id from marts.publish_info")
        return cur.fetchone()[0]


def _leftover_schemas(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "select nspname from pg_namespace where nspname like 'marts\\_\\_%' "
            "or nspname like 'audit\\_\\_%' order by 1"
        )
        return [r[0] for r in cur.fetchall()]


def _assert_described_typed_and_indexed(conn, tables: list[str]) -> None:
    """Every published table and column of marts carries its dbt description (COMMENT ON),
    money is numeric(18,2), the marts' keys are indexed, published_at has a time zone."""
    with conn.cursor() as cur:
        cur.execute(
            "select c.relname, a.attname, obj_description(c.oid), col_description(c.oid, a.attnum)"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"
            " where n.nspname = 'marts' and c.relkind = 'r'"
        )
        rows = cur.fetchall()
        cur.execute(
            "select table_name, column_name, data_type, numeric_precision, numeric_scale"
            " from information_schema.columns where table_schema = 'marts'"
        )
        types = {(r[0], r[1]): r[2:] for r in cur.fetchall()}
        cur.execute("select tablename, indexdef from pg_indexes where schemaname = 'marts'")
        indexes = cur.fetchall()
    assert {r[0] for r in rows} >= set(tables)
    assert [r[0] for r in rows if not r[2]] == [], "tables without a description"
    assert [f"{r[0]}.{r[1]}" for r in rows if not r[3]] == [], "columns without a description"
    assert types[("client_abc", "net_revenue_365d")] == ("numeric", 18, 2)
    assert types[("client_overview", "revenue_at_stake")] == ("numeric", 18, 2)
    assert types[("publish_info", "published_at")][0] == "timestamp with time zone"
    indexed = {(t, d.split(" USING btree ")[1]) for t, d in indexes}
    assert {
        ("client_status_history", "(as_of_date)"),
        ("client_status_history", "(client_id)"),
        ("client_overview", "(client_id)"),
        ("manager_portfolio", "(manager_id)"),
    } <= indexed


def test_daily_job_publishes_to_postgres(
    kam_defs,
    demo_sources: Path,
    pg_url: str,
    bi_role: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg2.errors

    data_dir = tmp_path / "data"
    monkeypatch.setenv("KAM_DATA_DIR", str(data_dir))
    monkeypatch.setenv("KAM_WAREHOUSE", pg_url)
    monkeypatch.setenv("KAM_BI_ROLE", bi_role)
    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{demo_sources / 'erp.sqlite'}")
    monkeypatch.setenv("KAM_CRM_URL", f"sqlite:///{demo_sources / 'crm.sqlite'}")
    job = kam_defs.resolve_job_def("kam_daily")
    instance = dg.DagsterInstance.ephemeral()

    result = job.execute_in_process(partition_key=AS_OF, instance=instance, raise_on_error=False)
    assert result.success, step_failures(result)
    checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    band = next(c for c in checks if c.check_name == "day_revenue_within_band")
    assert "skipped" not in band.metadata  # two years of history: judged
    low, high = band.metadata["revenue_band_low"].value, band.metadata["revenue_band_high"].value
    assert low <= band.metadata["revenue_band_value"].value <= high
    for check in checks:
        if "report" in check.metadata:  # GX checks (dbt tests carry no report)
            assert Path(check.metadata["report"].value).is_file()
    gx_checks = [c for c in checks if "report" in c.metadata]
    assert len(gx_checks) > 20
    [publish] = result.asset_materializations_for_node("warehouse")
    assert Path(publish.metadata["report_index"].value).is_file()

    # marts in PostgreSQL with the work DB's row counts
    work = duckdb.connect(str(data_dir / "work" / "kam_work.duckdb"), read_only=True)
    tables = [
        r[0]
        for r in work.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    ]
    work_counts = {
        t: work.execute(f"select count(*) from marts.{t}").fetchall()[0][0] for t in tables
    }
    work.close()
    assert {"dim_clients", "fct_orders", "client_abc", "kam_actions"} <= set(tables)
    conn = _pg(pg_url)
    with conn.cursor() as cur:
        pg_counts = {}
        for table in tables:
            cur.execute(f'select count(*) from marts."{table}"')
            pg_counts[table] = cur.fetchone()[0]
    assert pg_counts == work_counts
    assert pg_counts["dim_clients"] == 120
    first_version = _published_version(conn)
    assert first_version == result.run_id
    _assert_described_typed_and_indexed(conn, tables)
    # the brief read the PostgreSQL warehouse (never the work DB)
    [brief] = result.asset_materializations_for_node("manager_brief")
    assert Path(brief.metadata["index"].value).is_file()
    assert brief.metadata["managers"].value > 0
    assert _leftover_schemas(conn) == []

    # the BI role reads every mart and writes none
    with conn.cursor() as cur:
        cur.execute(
            "select tablename, has_table_privilege(%s, format('marts.%%I', tablename), 'SELECT'), "
            "has_table_privilege(%s, format('marts.%%I', tablename), 'INSERT') "
            "from pg_tables where schemaname = 'marts'",
            (bi_role, bi_role),
        )
        privileges = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
        assert set(tables) <= set(privileges)
        assert all(p == (True, False) for p in privileges.values()), privileges
        cur.execute(f'set role "{bi_role}"')
        cur.execute("select count(*) from marts.dim_clients")
        assert cur.fetchone()[0] == 120
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("insert into marts.dim_clients (client_id) values ('intruder')")
        cur.execute("reset role")

    # a bad BI role name fails the publish at once, naming the setting; nothing changes
    monkeypatch.setenv("KAM_BI_ROLE", "Bad-Role; drop schema marts")
    lone = [dg.AssetKey(["warehouse"])]
    bad = job.execute_in_process(
        partition_key=AS_OF, instance=instance, raise_on_error=False, asset_selection=lone
    )
    assert not bad.success
    failure = step_failures(bad)["warehouse"]
    assert "KAM_BI_ROLE" in failure and "invalid identifier" in failure
    assert not (data_dir / "reports" / bad.run_id).exists()  # failed before re-validating
    assert _published_version(conn) == first_version

    # a second publish swaps versions and leaves no __new_/__old_ schema behind
    monkeypatch.setenv("KAM_BI_ROLE", bi_role)
    again = job.execute_in_process(
        partition_key=AS_OF, instance=instance, raise_on_error=False, asset_selection=lone
    )
    assert again.success, step_failures(again)
    assert _published_version(conn) == again.run_id != first_version
    assert _leftover_schemas(conn) == []
    with conn.cursor() as cur:
        cur.execute(f'set role "{bi_role}"')
        cur.execute("select count(*) from marts.fct_orders")
        assert cur.fetchone()[0] == work_counts["fct_orders"]
        cur.execute("reset role")
    conn.close()
