"""Raw layer: incremental, idempotent extraction into the work DuckDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import source_fixtures as fx

from pipelines.contract import TABLES, get_table, tables_of
from pipelines.extract.base import ContractError, Source
from pipelines.extract.connect import open_source
from pipelines.extract.raw_loader import SourceRemovedError, TableLoad, extract_all, extract_system
from pipelines.extract.raw_schema import ensure_raw_schema

T = fx.T
D = fx.D


def raw_content(db: Path) -> dict[str, list[tuple]]:
    """Contract columns of every raw table, sorted (load columns left out)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table in TABLES:
            cols = ", ".join(table.column_names)
            rows = con.execute(f"select {cols} from raw_{table.system}.{table.name}").fetchall()
            out[f"{table.system}.{table.name}"] = sorted(
                rows, key=lambda t: tuple(str(v) for v in t)
            )
        return out
    finally:
        con.close()


def expected_content(data) -> dict[str, list[tuple]]:
    return {
        f"{t.system}.{t.name}": fx.expected_rows(t, data[t.system].get(t.name, [])) for t in TABLES
    }


def query(db: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def by_table(loads: list[TableLoad]) -> dict[str, TableLoad]:
    return {f"{x.system}.{x.table}": x for x in loads}


def change_day_two(data) -> None:
    """Day two in the source: an edited client, an edited order (one line removed, one
    changed), a new order with lines, a cancelled order's lines gone, a manager gone."""
    erp, crm = data["erp"], data["crm"]
    erp["clients"][0].update(client_name="Acme Group", updated_at=T("2026-02-01 09:00:00"))
    erp["orders"][0].update(status="returned", updated_at=T("2026-02-01 10:00:00"))
    erp["order_lines"] = [
        r for r in erp["order_lines"] if (r["order_id"], r["line_no"]) != ("O1", 2)
    ]
    erp["order_lines"][0]["quantity"] = 7.0
    erp["orders"].append(
        dict(
            order_id="O4",
            client_id="C2",
            order_date=D("2026-02-01"),
            status="completed",
            updated_at=T("2026-02-01 11:00:00"),
        )
    )
    erp["order_lines"] += [
        dict(
            order_id="O4",
            line_no=n,
            product_id="P1",
            quantity=float(n),
            unit_price=2.0,
            unit_cost=1.0,
            discount=0.0,
        )
        for n in (1, 2, 3)
    ]
    # O3: all its lines dropped by the ERP, the order touched.
    erp["orders"][2]["updated_at"] = T("2026-02-01 12:00:00")
    erp["order_lines"] = [r for r in erp["order_lines"] if r["order_id"] != "O3"]
    erp["invoices"][1].update(paid_date=D("2026-02-01"), updated_at=T("2026-02-01 13:00:00"))
    erp["invoices"].append(
        dict(
            invoice_id="I3",
            client_id="C2",
            order_id="O4",
            issued_date=D("2026-02-01"),
            due_date=D("2026-04-01"),
            amount=12.0,
            paid_date=None,
            updated_at=T("2026-02-01 13:00:00"),
        )
    )
    crm["managers"] = [m for m in crm["managers"] if m["manager_id"] != "M3"]
    crm["contacts"][1].update(full_name="Eve Adams", updated_at=T("2026-02-01 08:00:00"))


def write_sources(tmp_path: Path, data, kind: str = "sqlite") -> tuple[str, str]:
    return (
        fx.make_source_url(kind, tmp_path, "erp", data["erp"]),
        fx.make_source_url(kind, tmp_path, "crm", data["crm"]),
    )


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", ["sqlite", "parquet", "csv"])
def test_first_load_copies_every_table_with_load_columns(kind: str, tmp_path: Path) -> None:
    data = fx.base_data()
    erp_url, crm_url = write_sources(tmp_path, data, kind)
    db = tmp_path / "work" / "kam_work.duckdb"
    loads = by_table(extract_all(db, erp_url, crm_url, "run-1", chunk_rows=2))
    assert raw_content(db) == expected_content(data)
    assert loads["erp.order_lines"].rows_read == 5
    assert loads["erp.orders"].watermark_before is None
    assert loads["erp.orders"].watermark_after == T("2026-01-12 10:00:00")
    assert query(db, "select distinct _run_id from raw_erp.orders") == [("run-1",)]
    assert query(db, "select count(*) from raw_crm.managers where _loaded_at is null") == [(0,)]
    marks = dict(
        ((s, t), w)
        for s, t, w in query(db, "select system, table_name, watermark from raw_meta.watermarks")
    )
    assert marks[("erp", "clients")] == T("2026-01-03 08:00:00")
    assert marks[("crm", "interactions")] == T("2026-01-08 10:00:00.250000")
    assert ("crm", "managers") not in marks and ("erp", "order_lines") not in marks
    systems = query(db, "select system, configured, source from raw_meta.source_systems order by 1")
    assert [(s, c) for s, c, _ in systems] == [("crm", True), ("erp", True)]


@pytest.mark.parametrize("kind", ["sqlite", "parquet"])
def test_incremental_run_reads_only_changes_and_replaces_lines(kind: str, tmp_path: Path) -> None:
    data = fx.base_data()
    erp_url, crm_url = write_sources(tmp_path, data, kind)
    db = tmp_path / "work.duckdb"
    extract_all(db, erp_url, crm_url, "run-1", chunk_rows=2)

    change_day_two(data)
    erp_url, crm_url = write_sources(tmp_path, data, kind)
    loads = by_table(extract_all(db, erp_url, crm_url, "run-2", chunk_rows=2))

    assert raw_content(db) == expected_content(data)
    # clients: C3 sits on the old watermark (inclusive re-read) + the edited C1.
    assert loads["erp.clients"].rows_read == 2
    assert loads["erp.products"].rows_read == 1  # the one on the watermark
    # orders O1, O3, O4 changed; lines of O1 (1 left) and O4 (3); O3 has none now.
    assert loads["erp.orders"].rows_read == 3
    assert loads["erp.order_lines"].rows_read == 4
    assert loads["erp.order_lines"].rows_deleted == 2 + 2  # O1's two lines, O3's two
    assert loads["crm.managers"].rows_read == 2 and loads["crm.managers"].rows_deleted == 1
    assert loads["erp.orders"].watermark_before == T("2026-01-12 10:00:00")
    assert loads["erp.orders"].watermark_after == T("2026-02-01 12:00:00")
    run_ids = dict(query(db, "select client_id, _run_id from raw_erp.clients"))
    assert run_ids == {"C1": "run-2", "C2": "run-1", "C3": "run-2"}
    assert query(db, "select count(*) from raw_erp.order_lines where order_id = 'O3'") == [(0,)]


def test_rerunning_the_same_extraction_changes_nothing(tmp_path: Path) -> None:
    data = fx.base_data()
    erp_url, crm_url = write_sources(tmp_path, data)
    db = tmp_path / "work.duckdb"
    extract_all(db, erp_url, crm_url, "run-1", chunk_rows=2)
    first = raw_content(db)
    marks = query(db, "select system, table_name, watermark from raw_meta.watermarks order by 1, 2")
    again = by_table(extract_all(db, erp_url, crm_url, "run-1", chunk_rows=2))
    assert raw_content(db) == first
    assert (
        query(db, "select system, table_name, watermark from raw_meta.watermarks order by 1, 2")
        == marks
    )
    # Only the rows on each watermark were read again, and upserted without duplicates.
    assert again["erp.orders"].rows_read == 1 and again["erp.order_lines"].rows_read == 2
    counts = query(
        db, "select count(*), count(distinct (order_id, line_no)) from raw_erp.order_lines"
    )
    assert counts == [(5, 5)]


def test_duplicate_keys_are_all_kept_aside_within_and_across_chunks(tmp_path: Path) -> None:
    """A key read twice in one extraction (a source without constraints): neither copy is
    stored, both are kept aside as duplicate_key with their values, whatever the chunking;
    a later read where the key is unique again stores it and clears the rejections."""
    data = fx.base_data()
    dupe = dict(data["erp"]["clients"][1], client_name="Bolt twin")  # C2, same updated_at
    data["erp"]["clients"].append(dupe)
    erp_url, _ = _day(tmp_path, "d1", data)
    for chunk_rows in (1, 2, 100):
        db = tmp_path / f"work_{chunk_rows}.duckdb"
        loads = by_table(extract_all(db, erp_url, None, "run-1", chunk_rows=chunk_rows))
        assert query(db, "select client_id from raw_erp.clients order by 1") == [
            ("C1",),
            ("C3",),
        ]
        assert loads["erp.clients"].rows_duplicate == 2
        assert loads["erp.clients"].rows_upserted == 2
        kept = query(
            db,
            "select record_key, rule, columns, row_json from raw_meta.rejected_rows "
            "order by row_json",
        )
        assert [(k, r, c) for k, r, c, _ in kept] == [
            ("client_id=C2", "duplicate_key", "client_id")
        ] * 2
        assert sorted(json.loads(j)["client_name"] for *_, j in kept) == ["Bolt", "Bolt twin"]
    # next day the source holds C2 once again, newer: stored, rejections gone
    data["erp"]["clients"].pop()
    data["erp"]["clients"][1].update(updated_at=T("2026-02-01 09:00:00"))
    extract_all(db, *_day(tmp_path, "d2", data), "run-2", 100)
    assert query(db, "select client_name from raw_erp.clients where client_id = 'C2'") == [
        ("Bolt",)
    ]
    assert query(db, "select count(*) from raw_meta.rejected_rows") == [(0,)]


def test_a_duplicated_parent_does_not_duplicate_its_children(tmp_path: Path) -> None:
    """An order sent twice: both copies kept aside; its lines, read once each on an
    incremental run too (a semi-join, not a join), stay stored."""
    data = fx.base_data()
    db = tmp_path / "work.duckdb"
    extract_all(db, *_day(tmp_path, "d1", data), "run1", 100)
    data["erp"]["orders"][0]["updated_at"] = T("2026-02-01 10:00:00")
    data["erp"]["orders"].append(dict(data["erp"]["orders"][0], status="cancelled"))
    loads = by_table(extract_all(db, *_day(tmp_path, "d2", data), "run2", 100))
    assert loads["erp.orders"].rows_duplicate == 2
    assert loads["erp.order_lines"].rows_duplicate == 0
    assert query(db, "select count(*) from raw_erp.orders where order_id = 'O1'") == [(0,)]
    assert query(db, "select count(*) from raw_erp.order_lines where order_id = 'O1'") == [(2,)]


class CrashingSource(Source):
    """Delegates to a real source, but dies after ``after_chunks`` chunks of one table."""

    def __init__(self, inner: Source, table: str, after_chunks: int = 1) -> None:
        super().__init__(inner.system, inner.location)
        self.inner, self.table, self.after_chunks = inner, table, after_chunks

    def check_contract(self) -> None:
        self.inner.check_contract()

    def iter_keys(self, table, chunk_rows) -> Iterator:
        return self.inner.iter_keys(table, chunk_rows)

    def iter_batches(self, table, since, chunk_rows) -> Iterator:
        for n, batch in enumerate(self.inner.iter_batches(table, since, chunk_rows)):
            if table.name == self.table and n == self.after_chunks:
                raise RuntimeError("simulated crash")
            yield batch

    # unused abstract hooks
    def _table_names(self):  # pragma: no cover
        raise NotImplementedError

    def _column_names(self, actual_table):  # pragma: no cover
        raise NotImplementedError

    def _sample(self, table, column):  # pragma: no cover
        raise NotImplementedError

    def _iter_typed(self, table, since, chunk_rows):  # pragma: no cover
        raise NotImplementedError


@pytest.mark.parametrize("crash_table", ["clients", "orders", "order_lines", "invoices"])
def test_crash_mid_extraction_then_rerun_equals_uninterrupted(
    crash_table: str, tmp_path: Path
) -> None:
    day1 = fx.base_data()
    day2 = fx.base_data()
    change_day_two(day2)

    # Reference: two uninterrupted runs.
    ref_db = tmp_path / "ref.duckdb"
    erp1 = fx.write_sqlite(tmp_path / "erp1.sqlite", "erp", day1["erp"])
    erp2 = fx.write_sqlite(tmp_path / "erp2.sqlite", "erp", day2["erp"])
    extract_all(ref_db, erp1, None, "run-1", chunk_rows=100)
    extract_all(ref_db, erp2, None, "run-2", chunk_rows=100)

    # Day one fine, day two crashes mid-table, then day two is re-run.
    db = tmp_path / "work.duckdb"
    extract_all(db, erp1, None, "run-1", chunk_rows=1)
    marks_before = query(db, "select * from raw_meta.watermarks order by 1, 2")
    con = duckdb.connect(str(db))
    try:
        with open_source("erp", erp2) as inner, pytest.raises(RuntimeError, match="simulated"):
            extract_system(con, CrashingSource(inner, crash_table), "erp", "run-2", 1)
        # The crashed table's watermark (and the parent's, for lines) did not move.
        crashed = {"order_lines": "orders"}.get(crash_table, crash_table)
        mark = con.execute(
            "select watermark from raw_meta.watermarks where table_name = ?", [crashed]
        ).fetchone()
        assert mark == next((m[3],) for m in marks_before if m[1] == crashed)
    finally:
        con.close()
    extract_all(db, erp2, None, "run-2", chunk_rows=1)

    assert (
        raw_content(db) == raw_content(ref_db) == expected_content({"erp": day2["erp"], "crm": {}})
    )
    assert query(db, "select * exclude (updated_at) from raw_meta.watermarks order by 1, 2") == (
        query(ref_db, "select * exclude (updated_at) from raw_meta.watermarks order by 1, 2")
    )


def test_crash_during_first_load_then_rerun(tmp_path: Path) -> None:
    data = fx.base_data()
    erp_url = fx.write_sqlite(tmp_path / "erp.sqlite", "erp", data["erp"])
    db = tmp_path / "work.duckdb"
    con = duckdb.connect(str(db))
    try:
        with open_source("erp", erp_url) as inner, pytest.raises(RuntimeError):
            extract_system(con, CrashingSource(inner, "order_lines", 2), "erp", "run-1", 1)
        assert con.execute("select count(*) from raw_erp.order_lines").fetchone() == (2,)
        assert con.execute(
            "select count(*) from raw_meta.watermarks where table_name = 'orders'"
        ).fetchone() == (0,)
    finally:
        con.close()
    extract_all(db, erp_url, None, "run-1", chunk_rows=1)
    assert raw_content(db) == expected_content({"erp": data["erp"], "crm": {}})


def test_crm_removed_on_purpose_leaves_crm_tables_empty_and_marks_it(tmp_path: Path) -> None:
    data = fx.base_data()
    erp_url, crm_url = write_sources(tmp_path, data)
    db = tmp_path / "work.duckdb"
    extract_all(db, erp_url, crm_url, "run-1", chunk_rows=10)
    assert query(db, "select count(*) from raw_crm.contacts") == [(2,)]
    before = raw_content(db)

    # issue 22: unsetting the CRM by mistake would remove every CRM row: refused, unchanged
    with pytest.raises(SourceRemovedError, match=r"KAM_CRM_URL is not set.*KAM_CRM_REMOVED"):
        extract_all(db, erp_url, None, "run-2", chunk_rows=10)
    assert raw_content(db) == before

    # gone on purpose: the CRM rows are removed and kept as deletes
    stored = sum(
        query(db, f"select count(*) from raw_crm.{t.name}")[0][0] for t in tables_of("crm")
    )
    loads = by_table(extract_all(db, erp_url, None, "run-2", chunk_rows=10, crm_removed=True))
    assert query(db, "select count(*) from raw_meta.deleted_rows where system = 'crm'") == [
        (stored,)
    ]
    for table in tables_of("crm"):
        assert query(db, f"select count(*) from raw_crm.{table.name}") == [(0,)]
        assert loads[f"crm.{table.name}"].rows_read == 0
    assert query(
        db, "select configured, source from raw_meta.source_systems where system = 'crm'"
    ) == [(False, None)]
    assert query(db, "select count(*) from raw_meta.watermarks where system = 'crm'") == [(0,)]
    assert query(db, "select count(*) from raw_erp.orders") == [(3,)]


def test_broken_contract_writes_nothing(tmp_path: Path) -> None:
    data = fx.base_data()
    del data["crm"]["contacts"]
    erp_url, crm_url = write_sources(tmp_path, data)
    db = tmp_path / "work.duckdb"
    with pytest.raises(ContractError, match=r"crm\.contacts: table 'contacts' is missing"):
        extract_all(db, erp_url, crm_url, "run-1", chunk_rows=10)
    assert not db.exists()  # ERP was fine, but nothing was written

    # Against an existing work DB, the raw layer is left as it was.
    good = fx.base_data()
    (tmp_path / "ok").mkdir()
    erp_ok, crm_ok = write_sources(tmp_path / "ok", good)
    extract_all(db, erp_ok, crm_ok, "run-1", chunk_rows=10)
    before = raw_content(db)
    with pytest.raises(ContractError):
        extract_all(db, erp_url, crm_url, "run-2", chunk_rows=10)
    assert raw_content(db) == before
    assert query(db, "select distinct _run_id from raw_erp.clients") == [("run-1",)]


def test_extract_system_checks_contract_before_writing(tmp_path: Path) -> None:
    data = fx.base_data()
    for row in data["erp"]["orders"]:
        row["order_date"] = "someday"
    erp_url = fx.write_sqlite(tmp_path / "erp.sqlite", "erp", data["erp"])
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    try:
        ensure_raw_schema(con)
        with (
            open_source("erp", erp_url) as source,
            pytest.raises(ContractError, match="erp.orders"),
        ):
            extract_system(con, source, "erp", "run-1", 10)
        assert con.execute("select count(*) from raw_erp.clients").fetchone() == (0,)
        assert con.execute("select count(*) from raw_meta.source_systems").fetchone() == (0,)
    finally:
        con.close()


def test_erp_url_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="KAM_ERP_URL"):
        extract_all(tmp_path / "w.duckdb", None, None, "run-1", 10)  # type: ignore[arg-type]


def test_watermark_is_max_seen_not_wall_clock(tmp_path: Path) -> None:
    data = fx.base_data()
    erp_url = fx.write_sqlite(tmp_path / "erp.sqlite", "erp", data["erp"])
    db = tmp_path / "work.duckdb"
    extract_all(db, erp_url, None, "run-1", chunk_rows=10)
    (mark,) = query(db, "select watermark from raw_meta.watermarks where table_name = 'invoices'")[
        0:1
    ]
    assert mark[0] == max(r["updated_at"] for r in data["erp"]["invoices"])
    assert isinstance(mark[0], datetime)
    assert get_table("erp", "invoices").incremental_column == "updated_at"


def test_extraction_benchmark_runs_on_a_tiny_source(tmp_path: Path) -> None:
    from pipelines.benchmark.extract_bench import bench_extract, format_result

    result = bench_extract("sqlite", 2_000, tmp_path / "bench", chunk_rows=500)
    rows = {t["table"]: t["rows"] for t in result["tables"]}
    assert rows["erp.order_lines"] == 2_000 and rows["erp.orders"] == 400
    assert result["rows"] == sum(rows.values())
    assert result["peak_rss_mb"] >= result["rss_after_imports_mb"] > 0
    assert "erp.order_lines" in format_result(result)
    again = bench_extract("sqlite", 2_000, tmp_path / "bench", chunk_rows=500)
    assert again["build_seconds"] < result["build_seconds"]  # cached source reused


# --------------------------------------------------------------------------- unreadable rows


def _rejected(db: Path) -> list[tuple]:
    return query(
        db,
        "select table_name, record_key, columns, row_json, run_id "
        "from raw_meta.rejected_rows order by table_name, record_key",
    )


def _day(tmp_path: Path, name: str, data) -> tuple[str, str]:
    folder = tmp_path / name
    folder.mkdir()
    return write_sources(folder, data)


def test_unreadable_row_is_kept_aside_replacing_its_stale_version(tmp_path: Path) -> None:
    data = fx.base_data()
    db = tmp_path / "work.duckdb"
    extract_all(db, *_day(tmp_path, "d1", data), "run1", 100)
    # day 2: C2 edited with an unreadable payment term; O1 edited, one line unreadable
    data["erp"]["clients"][1].update(
        client_name="Bolt Ltd", payment_terms_days="sixty", updated_at=T("2026-02-01 09:00:00")
    )
    data["erp"]["orders"][0]["updated_at"] = T("2026-02-01 10:00:00")
    data["erp"]["order_lines"][1]["quantity"] = "lots"  # O1 line 2
    loads = by_table(extract_all(db, *_day(tmp_path, "d2", data), "run2", 100))

    # C2 and C3 (at the inclusive watermark) read; C3 stored, C2 rejected
    assert (loads["erp.clients"].rows_read, loads["erp.clients"].rows_upserted) == (2, 1)
    assert loads["erp.clients"].rows_rejected == 1
    assert loads["erp.order_lines"].rows_rejected == 1
    assert loads["erp.order_lines"].rows_upserted == 3  # O1 line 1, O3 (at the watermark)
    assert loads["erp.orders"].rows_rejected == 0
    # the stored version of C2 (day 1) is stale: it leaves the raw table
    assert query(db, "select client_id from raw_erp.clients order by 1") == [("C1",), ("C3",)]
    assert query(db, "select order_id, line_no from raw_erp.order_lines order by 1, 2") == [
        ("O1", 1),
        ("O2", 1),
        ("O3", 1),
        ("O3", 2),
    ]
    rejected = _rejected(db)
    assert [(t, k, c, r) for t, k, c, _, r in rejected] == [
        ("clients", "client_id=C2", "payment_terms_days", "run2"),
        ("order_lines", "order_id=O1|line_no=2", "quantity", "run2"),
    ]
    client = json.loads(rejected[0][3])
    assert client["payment_terms_days"] == "sixty" and client["client_name"] == "Bolt Ltd"
    line = json.loads(rejected[1][3])
    assert (
        line["quantity"] == "lots"
        and line["unit_price"] == data["erp"]["order_lines"][1]["unit_price"]
    )
    # the watermark moved past the rejected row: a re-run does not read it again ...
    assert query(db, "select watermark from raw_meta.watermarks where table_name = 'clients'") == [
        (T("2026-02-01 09:00:00"),)
    ]
    again = by_table(extract_all(db, *_day(tmp_path, "d3", data), "run3", 100))
    assert again["erp.clients"].rows_read == 1  # the watermark row itself (inclusive)
    # ... and re-reading it replaces its rejection, never duplicates it
    assert [(t, k, r) for t, k, _, _, r in _rejected(db)] == [
        ("clients", "client_id=C2", "run3"),
        ("order_lines", "order_id=O1|line_no=2", "run3"),
    ]

    # day 4: both fixed in the source -> rejections gone, fixed rows stored
    data["erp"]["clients"][1].update(payment_terms_days=60, updated_at=T("2026-02-02 09:00:00"))
    data["erp"]["orders"][0]["updated_at"] = T("2026-02-02 10:00:00")
    data["erp"]["order_lines"][1]["quantity"] = 4.0
    fixed = by_table(extract_all(db, *_day(tmp_path, "d4", data), "run4", 100))
    assert fixed["erp.clients"].rows_rejected == 0
    assert _rejected(db) == []
    assert query(
        db, "select client_name, payment_terms_days from raw_erp.clients where client_id = 'C2'"
    ) == [("Bolt Ltd", 60)]
    assert query(
        db, "select quantity from raw_erp.order_lines where order_id = 'O1' and line_no = 2"
    ) == [(4.0,)]


def test_rejections_of_rows_gone_from_the_source_are_dropped(tmp_path: Path) -> None:
    """A full read (managers) and a replaced parent's children drop the rejections of rows
    no longer in the source, as they drop stored rows."""
    data = fx.base_data()
    data["crm"]["managers"][2]["hired_at"] = "soon"  # M3
    data["erp"]["order_lines"][4]["discount"] = "n/a"  # O3 line 2
    db = tmp_path / "work.duckdb"
    loads = by_table(extract_all(db, *_day(tmp_path, "d1", data), "run1", 100))
    assert loads["crm.managers"].rows_rejected == 1
    assert [k for _, k, c, _, _ in _rejected(db)] == [
        "manager_id=M3",
        "order_id=O3|line_no=2",
    ]
    # day 2: M3 gone; O3 touched with all its lines gone
    data["crm"]["managers"] = data["crm"]["managers"][:2]
    data["erp"]["orders"][2]["updated_at"] = T("2026-02-01 12:00:00")
    data["erp"]["order_lines"] = [r for r in data["erp"]["order_lines"] if r["order_id"] != "O3"]
    extract_all(db, *_day(tmp_path, "d2", data), "run2", 100)
    assert _rejected(db) == []
    assert query(db, "select count(*) from raw_erp.order_lines where order_id = 'O3'") == [(0,)]


def test_unconfigured_crm_clears_its_rejections(tmp_path: Path) -> None:
    data = fx.base_data()
    data["crm"]["contacts"][0]["is_decision_maker"] = "maybe"  # 1 of 2 sampled: no breach
    db = tmp_path / "work.duckdb"
    extract_all(db, *_day(tmp_path, "d1", data), "run1", 100)
    assert [t for t, *_ in _rejected(db)] == ["contacts"]
    erp_url, _ = _day(tmp_path, "d2", data)
    extract_all(db, erp_url, None, "run2", 100, crm_removed=True)  # gone on purpose
    assert _rejected(db) == []


# --------------------------------------------------------------------------- issue 9


def test_a_future_updated_at_never_moves_the_watermark(tmp_path: Path) -> None:
    """Defect 1: an order with updated_at 2099 is stored (the quarantine flags it) but the
    watermark stays at the run's clock at most; a later real change is read next run."""
    data = fx.base_data()
    data["erp"]["orders"][1]["updated_at"] = T("2099-01-01 00:00:00")  # O2
    db = tmp_path / "work.duckdb"
    now = T("2026-01-20 12:00:00")
    loads = by_table(extract_all(db, *_day(tmp_path, "d1", data), "run1", 100, now=now))
    assert loads["erp.orders"].watermark_after == T("2026-01-12 10:00:00")  # O3, not 2099
    assert loads["erp.orders"].rows_ahead == 1
    assert query(db, "select count(*) from raw_erp.orders where order_id = 'O2'") == [(1,)]
    # next day O1 is returned (a realistic updated_at): read, whatever O2 says
    data["erp"]["orders"][0].update(status="returned", updated_at=T("2026-01-21 09:00:00"))
    later = T("2026-01-21 12:00:00")
    loads = by_table(extract_all(db, *_day(tmp_path, "d2", data), "run2", 100, now=later))
    assert query(db, "select status from raw_erp.orders where order_id = 'O1'") == [("returned",)]
    assert loads["erp.orders"].watermark_after == T("2026-01-21 09:00:00")
    # a skew allowance: a row a few minutes ahead of the clock still counts
    data["erp"]["orders"][2]["updated_at"] = later + timedelta(minutes=3)
    loads = by_table(
        extract_all(db, *_day(tmp_path, "d3", data), "run3", 100, now=later, clock_skew_minutes=5)
    )
    assert loads["erp.orders"].watermark_after == later + timedelta(minutes=3)


def test_a_watermark_stored_beyond_the_clock_is_repaired(tmp_path: Path) -> None:
    data = fx.base_data()
    db = tmp_path / "work.duckdb"
    extract_all(db, *_day(tmp_path, "d1", data), "run1", 100)
    con = duckdb.connect(str(db))
    con.execute(
        "update raw_meta.watermarks set watermark = timestamp '2099-01-01' "
        "where table_name = 'orders'"
    )
    con.close()
    data["erp"]["orders"][0].update(status="returned", updated_at=T("2026-02-01 10:00:00"))
    loads = by_table(extract_all(db, *_day(tmp_path, "d2", data), "run2", 100))
    assert loads["erp.orders"].watermark_before == T("2026-01-12 10:00:00")
    assert query(db, "select status from raw_erp.orders where order_id = 'O1'") == [("returned",)]
    assert query(db, "select watermark from raw_meta.watermarks where table_name = 'orders'") == [
        (T("2026-02-01 10:00:00"),)
    ]


def _folder(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    return tmp_path / name


def _deleted(db: Path) -> list[tuple]:
    return query(
        db,
        "select table_name, record_key, run_id from raw_meta.deleted_rows order by 1, 2",
    )


@pytest.mark.parametrize("kind", ["sqlite", "csv"])
def test_rows_deleted_at_the_source_leave_the_raw_layer(kind: str, tmp_path: Path) -> None:
    """Defect 5: an order deleted with its lines, a single line of another order and an
    unreadable row gone from the source are removed by the key reconciliation, kept in
    raw_meta.deleted_rows and counted."""
    data = fx.base_data()
    data["erp"]["invoices"][0]["amount"] = "n/a"  # I1: kept aside, then deleted
    db = tmp_path / "work.duckdb"
    extract_all(db, *write_sources(_folder(tmp_path, "d1"), data, kind), "run1", 2)
    assert _rejected(db)[0][1] == "invoice_id=I1"
    erp = data["erp"]
    erp["orders"] = [o for o in erp["orders"] if o["order_id"] != "O2"]
    erp["invoices"] = [i for i in erp["invoices"] if i["invoice_id"] != "I1"]
    erp["order_lines"] = [
        r
        for r in erp["order_lines"]
        if r["order_id"] != "O2" and (r["order_id"], r["line_no"]) != ("O1", 2)
    ]
    loads = by_table(
        extract_all(
            db, *write_sources(_folder(tmp_path, "d2"), data, kind), "run2", 2, max_delete_share=1.0
        )
    )
    assert raw_content(db)["erp.orders"] == expected_content(data)["erp.orders"]
    assert raw_content(db)["erp.order_lines"] == expected_content(data)["erp.order_lines"]
    assert loads["erp.orders"].rows_gone == 1 and loads["erp.order_lines"].rows_gone == 2
    assert loads["erp.order_lines"].rows_deleted >= 2
    assert _deleted(db) == [
        ("order_lines", "order_id=O1|line_no=2", "run2"),
        ("order_lines", "order_id=O2|line_no=1", "run2"),
        ("orders", "order_id=O2", "run2"),
    ]
    assert _rejected(db) == []
    row = json.loads(
        query(db, "select row_json from raw_meta.deleted_rows where table_name = 'orders'")[0][0]
    )
    assert row["client_id"] == "C2"
    # a re-run finds nothing more to remove
    again = by_table(
        extract_all(db, *write_sources(_folder(tmp_path, "d3"), data, kind), "run3", 2)
    )
    assert sum(x.rows_gone for x in again.values()) == 0


def test_a_mass_disappearance_is_not_applied_beyond_the_drop_share(tmp_path: Path) -> None:
    """A source that lost most of a table (half an export) is not mirrored: the rows stay
    (the row-count gate blocks the run); a run that accepts the drop removes them."""
    data = fx.base_data()
    db = tmp_path / "work.duckdb"
    extract_all(db, *_day(tmp_path, "d1", data), "run1", 100)
    data["erp"]["invoices"] = data["erp"]["invoices"][:1]  # 1 of 2 left: a 50 % drop
    loads = by_table(
        extract_all(db, *_day(tmp_path, "d2", data), "run2", 100, max_delete_share=0.2)
    )
    assert loads["erp.invoices"].rows_gone == 0
    assert query(db, "select count(*) from raw_erp.invoices") == [(2,)]
    loads = by_table(
        extract_all(db, *_day(tmp_path, "d3", data), "run3", 100, max_delete_share=0.6)
    )
    assert loads["erp.invoices"].rows_gone == 1
    assert query(db, "select count(*) from raw_erp.invoices") == [(1,)]


def test_reconciliation_can_be_switched_off(tmp_path: Path) -> None:
    data = fx.base_data()
    db = tmp_path / "work.duckdb"
    extract_all(db, *_day(tmp_path, "d1", data), "run1", 100)
    data["erp"]["orders"] = data["erp"]["orders"][:2]
    extract_all(db, *_day(tmp_path, "d2", data), "run2", 100, reconcile=False)
    assert query(db, "select count(*) from raw_erp.orders") == [(3,)]


def test_large_tables_are_reconciled_once_a_week(tmp_path: Path) -> None:
    """KAM_DELETE_CHECK_MAX_ROWS: a table with more source rows is reconciled when its last
    reconciliation is 7 days old; smaller tables every run."""
    data = fx.base_data()
    db = tmp_path / "work.duckdb"
    day = T("2026-02-01 12:00:00")
    extract_all(db, *_day(tmp_path, "d1", data), "run1", 100, now=day)
    options = {"reconcile_max_rows": 1, "max_delete_share": 1.0}
    extract_all(db, *_day(tmp_path, "d2", data), "run2", 100, now=day, **options)  # first check
    data["erp"]["orders"] = data["erp"]["orders"][:2]  # 3 -> 2 orders
    data["erp"]["invoices"] = data["erp"]["invoices"][:1]  # 2 -> 1: small, every run
    loads = by_table(extract_all(db, *_day(tmp_path, "d3", data), "run3", 100, now=day, **options))
    assert loads["erp.orders"].rows_gone == 0 and loads["erp.invoices"].rows_gone == 1
    week = day + timedelta(days=7)
    loads = by_table(extract_all(db, *_day(tmp_path, "d4", data), "run4", 100, now=week, **options))
    assert loads["erp.orders"].rows_gone == 1
