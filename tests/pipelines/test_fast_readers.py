"""The fast readers (ADBC, ``pipelines.extract.fast_sql``) give the same batches as the
generic path (SQLAlchemy rows): same schema, values, nulls, unreadable values and chunks,
on SQLite (values of any type in any column) and PostgreSQL (many column types)."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines.contract import Table, get_table
from pipelines.extract import fast_sql
from pipelines.extract.base import UNREADABLE, batch_schema
from pipelines.extract.connect import open_source
from pipelines.extract.sql_source import SqlSource

T = datetime.fromisoformat

# --------------------------------------------------------------------------- helpers


def read_both(
    source: SqlSource,
    table: Table,
    since: datetime | None,
    chunk_rows: int,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[pa.RecordBatch], list[pa.RecordBatch]]:
    """(fast, generic) batches of one read; the fast read must not touch the generic way."""

    def no_rows(*args: Any, **kwargs: Any) -> Iterator[Any]:
        raise AssertionError("the fast reader fell back to SQLAlchemy rows")

    with monkeypatch.context() as m:
        m.setattr(source, "_fetch_rows", no_rows)
        source.fast_reader = True
        fast = list(source.iter_batches(table, since, chunk_rows))
    source.fast_reader = False
    generic = list(source.iter_batches(table, since, chunk_rows))
    return fast, generic


def assert_same(fast: list[pa.RecordBatch], generic: list[pa.RecordBatch], table: Table) -> None:
    assert [b.num_rows for b in fast] == [b.num_rows for b in generic]
    for f, g in zip(fast, generic, strict=True):
        assert f.schema == g.schema == batch_schema(table)
        if not f.equals(g):  # then show the difference as Python values
            assert _py(f) == _py(g)
            raise AssertionError("batches differ")


def _py(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    rows = batch.to_pylist()
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float) and math.isnan(v):
                r[k] = "NaN"
    return rows


def keys_both(
    source: SqlSource, table: Table, chunk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        m.setattr(source, "_fetch_rows", lambda *a, **k: iter(()))
        source.fast_reader = True
        fast = list(source.iter_keys(table, chunk_rows))
    source.fast_reader = False
    generic = list(source.iter_keys(table, chunk_rows))
    assert [b.num_rows for b in fast] == [b.num_rows for b in generic]
    assert all(f.equals(g) for f, g in zip(fast, generic, strict=True))


# --------------------------------------------------------------------------- SQLite

# Untyped SQLite columns keep every value as given: any type in any contract column.
MESSY = {
    "clients": [
        [
            "C1",
            "Acme",
            "SMB",
            "North",
            "Retail",
            "M1",
            "key",
            30,
            "2024-01-05 09:00:00",
            "2026-01-01 08:00:00",
        ],
        [
            "C2",
            "Zürich Ölwerke 日本 \u2013 'q'",
            "SMB",
            None,
            "",
            "M2",
            None,
            "30",
            "2024-02-01T10:30:00.123456",
            "2026-01-02 08:00:00+02:00",
        ],
        [
            "C3",
            12,
            "SMB",
            3.5,
            b"bytes",
            None,
            "KA",
            30.0,
            "2024-13-45 00:00:00",
            "2026-01-03 08:00:00",
        ],
        ["C4", None, "SMB", None, None, None, None, 30.5, None, "2026-01-04"],
        ["C5", "x", "SMB", None, None, None, None, "lots", "yesterday", "2026-01-05 08:00:00"],
        ["C6", "y", "SMB", 2**62, -1.25, None, None, 2**62, 0, "2026-01-06 08:00:00"],
        ["C7", "z", "SMB", None, None, None, None, b"\x00\xff", 1.5, "2026-01-07 08:00:00"],
    ],
    "order_lines": [
        ["O1", 1, "P1", 2.0, 10.5, None, 0.0],
        ["O1", 2, "P2", 3, "12.25", 1e300, "0"],
        ["O1", 3, None, 2**60, 0.1 + 0.2, "lots", b"\x01"],
        ["O2", "4", "P1", 1e-310, -1.5, 2**53 + 1, None],
        ["O2", 5.0, "P3", "1e3", "abc", -7, ""],
        ["O3", 6.5, "P1", None, None, None, None],
        ["O3", None, 7, 1.0, 1.0, 1.0, 1.0],
    ],
    "contacts": [
        ["K1", "C1", "Ann", "CEO", "director", 1, "2024-01-01", None, "2026-01-01 00:00:00"],
        ["K2", "C1", "Bob", None, "head", 0, "2024-02-30", "2025-06-01", "2026-01-02 00:00:00"],
        ["K3", "C2", None, None, "head", "yes", None, 20240101, "2026-01-03 00:00:00"],
        ["K4", "C2", "Čeněk", None, "head", 2, "2024-03-01 10:00:00", 2.5, "2026-01-04"],
        ["K5", "C3", "Eve", None, "head", "maybe", "", "2025-01-01", "2026-01-05 00:00:00"],
        ["K6", "C3", "Fay", None, "head", None, "2024-01-01", None, "2026-01-06 00:00:00"],
    ],
    "orders": [
        ["O1", "C1", "2026-01-01", "completed", "2026-01-01 10:00:00"],
        ["O2", "C2", "2026-01-02", "completed", "2026-01-11 10:00:00"],
        ["O3", "C2", "2026-01-03", "cancelled", "2026-01-12 10:00:00"],
    ],
}


def write_messy_sqlite(path: Path, rows: dict[str, list[list[Any]]] | None = None) -> str:
    rows = rows or MESSY
    con = sqlite3.connect(path)
    for name, table_rows in rows.items():
        system = "crm" if name == "contacts" else "erp"
        table = get_table(system, name)
        con.execute(f"create table {name} ({', '.join(table.column_names)})")
        marks = ", ".join("?" for _ in table.columns)
        con.executemany(f"insert into {name} values ({marks})", table_rows)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def _system(name: str) -> str:
    return "crm" if name == "contacts" else "erp"


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 1000])
@pytest.mark.parametrize("name", ["clients", "order_lines", "contacts"])
def test_sqlite_fast_and_generic_batches_are_identical(
    name: str, chunk_rows: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write_messy_sqlite(tmp_path / "messy.sqlite")
    table = get_table(_system(name), name)  # type: ignore[arg-type]
    with open_source(_system(name), url) as source:
        assert isinstance(source, SqlSource)
        fast, generic = read_both(source, table, None, chunk_rows, monkeypatch)
    assert_same(fast, generic, table)
    assert sum(b.num_rows for b in fast) == len(MESSY[name])
    assert max(b.num_rows for b in fast) <= chunk_rows


def test_sqlite_unreadable_values_are_reported_with_their_original_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write_messy_sqlite(tmp_path / "messy.sqlite")
    table = get_table("erp", "order_lines")
    with open_source("erp", url) as source:
        fast, _ = read_both(source, table, None, 1000, monkeypatch)
    rows = {(r["order_id"], r["line_no"]): r for b in fast for r in b.to_pylist()}
    flagged = {k: json.loads(r[UNREADABLE]) for k, r in rows.items() if r[UNREADABLE]}
    assert flagged[("O1", 3)] == {"unit_cost": "lots", "discount": "\x01"}
    assert flagged[("O2", 5)] == {"unit_price": "abc", "discount": ""}
    assert rows[("O2", 5)]["unit_price"] is None and rows[("O2", 5)]["quantity"] == 1000.0
    assert rows[("O1", 2)]["unit_price"] == 12.25  # numeric text is readable
    assert rows[("O1", 3)]["quantity"] == float(2**60)
    assert rows[("O2", 4)]["unit_cost"] == float(2**53 + 1)  # odd path: exact integer in
    # a fractional line number cannot be a key: null, flagged
    o3 = [r for b in fast for r in b.to_pylist() if r["order_id"] == "O3"]
    assert [(r["line_no"], r[UNREADABLE]) for r in o3] == [(None, '{"line_no": "6.5"}')] * 1 + [
        (None, None)
    ]


def test_sqlite_since_children_and_keys_are_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write_messy_sqlite(tmp_path / "messy.sqlite")
    since = T("2026-01-11 10:00:00")
    with open_source("erp", url) as source:
        assert isinstance(source, SqlSource)
        for name in ("orders", "order_lines", "clients"):
            table = get_table("erp", name)
            fast, generic = read_both(source, table, since, 2, monkeypatch)
            assert_same(fast, generic, table)
        lines = read_both(source, get_table("erp", "order_lines"), since, 2, monkeypatch)[0]
        assert sorted({r["order_id"] for b in lines for r in b.to_pylist()}) == ["O2", "O3"]
        for name in ("order_lines", "clients"):
            keys_both(source, get_table("erp", name), 3, monkeypatch)


def test_sqlite_first_chunk_all_null_then_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADBC infers a column's type from its first rows: the probe row keeps a column that
    starts with nulls (then holds text, reals...) readable."""
    rows = [["O1", n, None, None, None, None, None] for n in range(1, 6)]
    rows += [["O1", 6, "P1", 1.5, 2.5, 3.5, 0.0], ["O1", 7, "P2", "x", 1, 2, 3]]
    url = write_messy_sqlite(tmp_path / "nulls.sqlite", {"order_lines": rows})
    table = get_table("erp", "order_lines")
    with open_source("erp", url) as source:
        fast, generic = read_both(source, table, None, 2, monkeypatch)
    assert_same(fast, generic, table)


def test_sqlite_memory_database_uses_the_generic_path() -> None:
    engine = sa.create_engine("sqlite://")
    source = SqlSource("erp", "sqlite://", engine)
    assert source._fast_opener(sa.select(sa.literal(1)), [], 10) is None


@pytest.mark.parametrize(
    "sizes, chunk_rows, expected",
    [
        ([5, 5], 3, [3, 3, 3, 1]),
        ([1, 1, 1, 1], 3, [3, 1]),
        ([10], 10, [10]),
        ([0, 7, 0], 2, [2, 2, 2, 1]),
        ([], 4, []),
    ],
)
def test_rechunk_cuts_exact_chunks(sizes: list[int], chunk_rows: int, expected: list[int]):
    start = 0
    batches = []
    for n in sizes:
        batches.append(pa.record_batch({"x": pa.array(range(start, start + n), pa.int64())}))
        start += n
    out = list(fast_sql.rechunk(batches, chunk_rows))
    assert [b.num_rows for b in out] == expected
    assert [v for b in out for v in b.column(0).to_pylist()] == list(range(start))


@pytest.mark.parametrize(
    "text, value",
    [
        ("'it''s'", "it's"),
        ("''", ""),
        ("X'00FF'", b"\x00\xff"),
        ("-12", -12),
        ("0.30000000000000004", 0.1 + 0.2),
        ("1.2345678901234568e+17", 123456789012345678.0),
        ("9.0e+999", math.inf),
    ],
)
def test_parse_quoted(text: str, value: Any) -> None:
    parsed = fast_sql.parse_quoted(text)
    assert parsed == value and type(parsed) is type(value)


# --------------------------------------------------------------------------- PostgreSQL

# (column, PostgreSQL type, values) per contract column; each case is one table layout
PG_CASES: dict[str, tuple[str, list[tuple[str, str]], list[list[Any]]]] = {
    "order_lines-native": (
        "order_lines",
        [
            ("order_id", "text"),
            ("line_no", "bigint"),
            ("product_id", "varchar(20)"),
            ("quantity", "double precision"),
            ("unit_price", "numeric(12,2)"),
            ("unit_cost", "real"),
            ("discount", "numeric"),
        ],
        [
            ["O1", 1, "P1", 2.0, "10.50", 1.1, "0"],
            ["O1", 2, "Zürich 日本", 1e300, "-0.01", None, "0.1234567890123456789"],
            ["O2", 9007199254740993, None, None, None, 3.4e38, None],
            ["O2", -1, "", -0.0, "99999999.99", 1e-45, "1e20"],
        ],
    ),
    "order_lines-text-and-ints": (
        "order_lines",
        [
            ("order_id", "char(4)"),
            ("line_no", "text"),
            ("product_id", "integer"),
            ("quantity", "smallint"),
            ("unit_price", "integer"),
            ("unit_cost", "text"),
            ("discount", "numeric(10,3)"),
        ],
        [
            ["O1", "1", 7, 2, 10, "1.5", "0.125"],
            ["O1", "lots", None, None, -3, "abc", None],
            ["O2", "2.5", 8, 1, 0, "", "2.000"],
            ["O2", " 3 ", 9, 3, 1, None, "-1.5"],
        ],
    ),
    "clients": (
        "clients",
        [
            ("client_id", "text"),
            ("client_name", "text"),
            ("segment", "text"),
            ("region", "text"),
            ("industry", "text"),
            ("account_manager_id", "text"),
            ("declared_tier", "text"),
            ("payment_terms_days", "numeric"),
            ("created_at", "timestamptz"),
            ("updated_at", "timestamp"),
        ],
        [
            [
                "C1",
                "Acme",
                "SMB",
                None,
                None,
                None,
                "KA",
                "30",
                "2024-01-05 09:00:00+02",
                "2026-01-01 08:00:00",
            ],
            [
                "C2",
                "Ölwerke – 'q'",
                "SMB",
                "",
                None,
                None,
                None,
                "30.5",
                None,
                "2026-01-02 08:00:00.123456",
            ],
            [
                "C3",
                None,
                "SMB",
                None,
                None,
                None,
                None,
                None,
                "2024-06-30 23:59:59.999999-07",
                "2026-01-03 08:00:00",
            ],
        ],
    ),
    "contacts": (
        "contacts",
        [
            ("contact_id", "text"),
            ("client_id", "text"),
            ("full_name", "text"),
            ("position", "text"),
            ("level", "text"),
            ("is_decision_maker", "boolean"),
            ("started_at", "date"),
            ("left_at", "timestamp"),
            ("updated_at", "timestamptz"),
        ],
        [
            ["K1", "C1", "Ann", None, "head", True, "2024-01-01", None, "2026-01-01 00:00:00+00"],
            [
                "K2",
                "C1",
                None,
                None,
                "head",
                False,
                None,
                "2025-06-01 00:00:00",
                "2026-01-02 12:00:00+05:30",
            ],
            [
                "K3",
                "C2",
                "Čeněk",
                None,
                "head",
                None,
                "0001-01-01",
                "2025-06-01 13:30:00",
                "2026-01-03 00:00:00+00",
            ],
        ],
    ),
}


def write_pg_case(url: str, name: str, columns: list[tuple[str, str]], rows: list[list[Any]]):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table if exists {name}")
            conn.exec_driver_sql(
                f"create table {name} ({', '.join(f'{c} {t}' for c, t in columns)})"
            )
            marks = ", ".join(f"%(c{i})s" for i in range(len(columns)))
            conn.exec_driver_sql(
                f"insert into {name} values ({marks})",
                [{f"c{i}": v for i, v in enumerate(r)} for r in rows],
            )
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("case", list(PG_CASES))
def test_postgres_fast_and_generic_batches_are_identical(
    case: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, columns, rows = PG_CASES[case]
    write_pg_case(pg_url, name, columns, rows)
    system = _system(name)
    table = get_table(system, name)  # type: ignore[arg-type]
    with open_source(system, pg_url) as source:
        assert isinstance(source, SqlSource)
        for chunk_rows in (1, 2, 1000):
            fast, generic = read_both(source, table, None, chunk_rows, monkeypatch)
            assert_same(fast, generic, table)
            assert max(b.num_rows for b in fast) <= chunk_rows
        keys_both(source, table, 2, monkeypatch)


@pytest.mark.postgres
def test_postgres_unreadable_values_are_reported(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, columns, rows = PG_CASES["order_lines-text-and-ints"]
    write_pg_case(pg_url, name, columns, rows)
    table = get_table("erp", name)
    with open_source("erp", pg_url) as source:
        fast, _ = read_both(source, table, None, 1000, monkeypatch)
    flagged = [json.loads(r[UNREADABLE]) for b in fast for r in b.to_pylist() if r[UNREADABLE]]
    assert sorted(flagged, key=json.dumps) == [
        {"line_no": "2.5", "unit_cost": ""},
        {"line_no": "lots", "unit_cost": "abc"},
    ]


@pytest.mark.postgres
def test_postgres_since_and_children_are_identical(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, columns, rows = PG_CASES["order_lines-native"]
    write_pg_case(pg_url, name, columns, rows)
    write_pg_case(
        pg_url,
        "orders",
        [
            ("order_id", "text"),
            ("client_id", "text"),
            ("order_date", "date"),
            ("status", "text"),
            ("updated_at", "timestamptz"),
        ],
        [
            ["O1", "C1", "2026-01-01", "completed", "2026-01-01 10:00:00+00"],
            ["O2", "C1", "2026-01-02", "completed", "2026-01-11 12:00:00+02"],
        ],
    )
    since = T("2026-01-11 10:00:00")  # O2: 10:00 UTC, on the watermark (inclusive)
    with open_source("erp", pg_url) as source:
        assert isinstance(source, SqlSource)
        for t in ("orders", "order_lines"):
            table = get_table("erp", t)
            fast, generic = read_both(source, table, since, 1, monkeypatch)
            assert_same(fast, generic, table)
            assert {r["order_id"] for b in fast for r in b.to_pylist()} == {"O2"}


@pytest.mark.postgres
def test_postgres_column_of_another_type_falls_back_to_the_generic_path(pg_url: str) -> None:
    columns = [(c, "text") for c in get_table("erp", "products").column_names]
    columns[0] = ("product_id", "uuid")
    columns[3] = ("updated_at", "timestamp")
    write_pg_case(
        pg_url,
        "products",
        columns,
        [["6f1c1e0e-2f0a-4c55-9a51-0d1ad3a1e1a1", "Widget", "Cat 1", "2026-01-01 00:00:00"]],
    )
    table = get_table("erp", "products")
    with open_source("erp", pg_url) as source:
        assert isinstance(source, SqlSource)
        assert source._pg_fast_select(source._statement(table, None)) is None
        rows = [r for b in source.iter_batches(table, None, 10) for r in b.to_pylist()]
    assert rows[0]["product_id"] == "6f1c1e0e-2f0a-4c55-9a51-0d1ad3a1e1a1"


def test_a_fast_reader_that_cannot_start_falls_back_to_the_generic_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = write_messy_sqlite(tmp_path / "messy.sqlite")
    table = get_table("erp", "order_lines")
    with open_source("erp", url) as source:
        source.fast_reader = False
        expected = list(source.iter_batches(table, None, 3))

        def broken(*args: Any, **kwargs: Any) -> Iterator[Any]:
            raise OSError("[SQLite] cannot open")
            yield  # a generator, as the real reader

        monkeypatch.setattr(fast_sql, "iter_sqlite", broken)
        source.fast_reader = True
        got = list(source.iter_batches(table, None, 3))
    assert_same(got, expected, table)
    assert "fast reader unavailable (OSError: [SQLite] cannot open)" in caplog.text
