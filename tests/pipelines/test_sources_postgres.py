"""Sources on the real PostgreSQL server (``pg_url`` fixture): native types, streaming,
incremental extraction and contract errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import source_fixtures as fx
import sqlalchemy as sa

from pipelines.contract import TABLES, tables_of
from pipelines.extract.base import ContractError
from pipelines.extract.connect import open_source
from pipelines.extract.raw_loader import extract_all
from pipelines.extract.sql_source import SqlSource

pytestmark = pytest.mark.postgres


def raw_content(db: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            f"{t.system}.{t.name}": sorted(
                con.execute(
                    f"select {', '.join(t.column_names)} from raw_{t.system}.{t.name}"
                ).fetchall(),
                key=lambda r: tuple(str(v) for v in r),
            )
            for t in TABLES
        }
    finally:
        con.close()


def test_postgres_source_extracts_incrementally(pg_url: str, tmp_path: Path) -> None:
    data = fx.base_data()
    # ERP and CRM in one database: each source only looks at its own tables.
    fx.write_postgres(pg_url, "erp", data["erp"])
    fx.write_postgres(pg_url, "crm", data["crm"])
    db = tmp_path / "work.duckdb"
    loads = extract_all(db, pg_url, pg_url, "run-1", chunk_rows=2)
    expected = {f"{t.system}.{t.name}": fx.expected_rows(t, data[t.system][t.name]) for t in TABLES}
    assert raw_content(db) == expected
    assert {x.table: x.rows_read for x in loads}["order_lines"] == 5

    # Day two: an order edited (a line removed), a client renamed.
    data["erp"]["orders"][0]["updated_at"] = fx.T("2026-02-01 10:00:00")
    data["erp"]["order_lines"] = [
        r for r in data["erp"]["order_lines"] if (r["order_id"], r["line_no"]) != ("O1", 2)
    ]
    data["erp"]["clients"][1].update(client_name="Bolt AG", updated_at=fx.T("2026-02-02 00:00"))
    fx.write_postgres(pg_url, "erp", data["erp"])
    # the CRM is still configured (a run without it is refused: KAM_CRM_REMOVED)
    loads = {x.table: x for x in extract_all(db, pg_url, pg_url, "run-2", chunk_rows=2)}
    assert loads["orders"].rows_read == 2  # O1 (changed) + O3 (on the watermark)
    assert loads["order_lines"].rows_read == 3  # O1's remaining line + O3's two
    assert loads["clients"].rows_read == 2  # C2 (changed) + C3 (on the watermark)
    content = raw_content(db)
    for t in tables_of("erp"):
        key = f"erp.{t.name}"
        assert content[key] == fx.expected_rows(t, data["erp"][t.name])


@pytest.mark.parametrize("fast", [True, False], ids=["adbc-copy", "generic"])
def test_postgres_streams_in_chunks_with_a_server_side_cursor(pg_url: str, fast: bool) -> None:
    data = fx.base_data()
    data["erp"]["order_lines"] = [
        dict(
            order_id=f"O{n % 3 + 1}",
            line_no=n,
            product_id="P1",
            quantity=1.0,
            unit_price=1.0,
            unit_cost=None,
            discount=0.0,
        )
        for n in range(1, 1001)
    ]
    fx.write_postgres(pg_url, "erp", data["erp"])
    engine = sa.create_engine(pg_url)
    try:
        with open_source("erp", pg_url) as source:
            assert isinstance(source, SqlSource)
            source.fast_reader = fast
            source.check_contract()
            table = next(t for t in tables_of("erp") if t.name == "order_lines")
            sizes = []
            seen_by_server = []
            for batch in source.iter_batches(table, None, 300):
                sizes.append(batch.num_rows)
                with engine.connect() as conn:
                    seen_by_server += (
                        conn.exec_driver_sql(
                            "select query from pg_stat_activity "
                            "where datname = current_database() and pid <> pg_backend_pid()"
                        )
                        .scalars()
                        .all()
                    )
    finally:
        engine.dispose()
    assert sizes == [300, 300, 300, 100]
    if fast:  # one COPY streamed (binary), re-cut into chunks
        assert any(
            q.startswith("COPY (") and "TO STDOUT (FORMAT binary)" in q for q in seen_by_server
        ), seen_by_server
    else:  # the rows came from a server-side cursor, fetched chunk by chunk
        assert any(q.startswith("FETCH FORWARD") for q in seen_by_server), seen_by_server


def test_postgres_contract_violation_is_named(pg_url: str) -> None:
    data = fx.base_data()
    fx.write_postgres(pg_url, "erp", data["erp"])
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql("alter table orders drop column order_date")
        conn.exec_driver_sql("alter table clients alter column payment_terms_days type text")
        conn.exec_driver_sql(  # every value (C1, C2): the column holds another type
            "update clients set payment_terms_days = 'thirty' where client_id in ('C1', 'C2')"
        )
    with open_source("erp", pg_url) as source, pytest.raises(ContractError) as err:
        source.check_contract()
    assert "erp.orders: column 'order_date' is missing (expected date)" in err.value.problems
    assert any(
        p.startswith("erp.clients: column 'payment_terms_days' cannot be read as integer")
        and "2 of 2 sampled values unreadable, e.g. 'thirty'" in p
        for p in err.value.problems
    )


@pytest.mark.parametrize("fast", [True, False], ids=["adbc-copy", "generic"])
def test_postgres_url_options_reach_the_session(pg_url: str, fast: bool) -> None:
    """README "Mapping your data": views in a schema named by the URL's libpq options
    (``?options=-csearch_path%3Dkam``) are the source; the session stays in UTC."""
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("create schema kam")
    finally:
        engine.dispose()
    url = pg_url + "?options=-csearch_path%3Dkam"
    data = fx.base_data()
    fx.write_postgres(url, "erp", data["erp"])  # created in schema kam only
    with open_source("erp", url) as source:
        assert isinstance(source, SqlSource)
        source.fast_reader = fast
        source.check_contract()
        with source.engine.connect() as conn:
            assert conn.exec_driver_sql("show search_path").scalar_one() == "kam"
            assert conn.exec_driver_sql("show timezone").scalar_one() == "UTC"
        clients = next(t for t in tables_of("erp") if t.name == "clients")
        rows = sum(batch.num_rows for batch in source.iter_batches(clients, None, 100))
    assert rows == len(data["erp"]["clients"])


def test_postgres_url_options_keep_the_utc_session_on_the_fast_path() -> None:
    from pipelines.extract.fast_sql import pg_uri

    uri = pg_uri(sa.engine.make_url("postgresql://u@h/db?options=-csearch_path%3Dkam"), 5)
    options = uri.split("options=")[1].split("&")[0]
    assert options == "-csearch_path%3Dkam%20-c%20timezone%3DUTC"
