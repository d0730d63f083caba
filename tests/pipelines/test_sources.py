"""Source connectors: contract check, typed streaming, files, masking, retries.

The small contract-shaped data set and its writers are in source_fixtures.py.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import sqlite3
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from source_fixtures import (
    WRITERS,
    T,
    base_data,
    expected_rows,
    make_source_url,
    sqlite_value,
    write_csv,
    write_parquet,
    write_sqlite,
)

from pipelines.contract import Table, get_table, tables_of
from pipelines.extract import base
from pipelines.extract.base import (
    UNREADABLE,
    ContractError,
    SourceUnavailableError,
    arrow_schema,
    batch_schema,
)
from pipelines.extract.connect import open_source
from pipelines.extract.folder_source import FolderSource
from pipelines.secrets import mask_url


def read_flagged(source: base.Source, table: Table, since=None, chunk_rows=1000) -> list[dict]:
    """Every row yielded, as dicts with the UNREADABLE flag (sorted by record key)."""
    out = []
    for batch in source.iter_batches(table, since, chunk_rows):
        assert batch.schema == batch_schema(table)
        out += batch.to_pylist()
    return sorted(out, key=lambda r: tuple(str(r[k]) for k in table.primary_key))


def read_all(source: base.Source, table: Table, since=None, chunk_rows=1000) -> list[tuple]:
    """Every row yielded, as sorted tuples; asserts that every value was readable."""
    rows = read_flagged(source, table, since, chunk_rows)
    assert [r[UNREADABLE] for r in rows] == [None] * len(rows)
    out = [tuple(r[c] for c in table.column_names) for r in rows]
    return sorted(out, key=lambda t: tuple(str(v) for v in t))


# --------------------------------------------------------------------------- tests

KINDS = ["sqlite", "parquet", "csv"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_table_reads_back_typed_and_equal(kind: str, tmp_path: Path) -> None:
    data = base_data()
    for system in ("erp", "crm"):
        url = make_source_url(kind, tmp_path, system, data[system])
        with open_source(system, url) as source:
            source.check_contract()
            for table in tables_of(system):
                assert read_all(source, table) == expected_rows(table, data[system][table.name])


@pytest.mark.parametrize("kind", KINDS)
def test_since_filters_incremental_tables_and_children(kind: str, tmp_path: Path) -> None:
    data = base_data()["erp"]
    url = make_source_url(kind, tmp_path, "erp", data)
    with open_source("erp", url) as source:
        since = T("2026-01-11 10:00:00")  # inclusive: O2 (equal) and O3 (after)
        orders = read_all(source, get_table("erp", "orders"), since)
        assert [o[0] for o in orders] == ["O2", "O3"]
        lines = read_all(source, get_table("erp", "order_lines"), since)
        assert sorted((r[0], r[1]) for r in lines) == [("O2", 1), ("O3", 1), ("O3", 2)]
        clients = read_all(source, get_table("erp", "clients"), T("2030-01-01"))
        assert clients == []
        assert read_all(source, get_table("erp", "order_lines"), T("2030-01-01")) == []


@pytest.mark.parametrize("kind", KINDS)
def test_batches_respect_chunk_rows(kind: str, tmp_path: Path) -> None:
    data = base_data()["erp"]
    url = make_source_url(kind, tmp_path, "erp", data)
    with open_source("erp", url) as source:
        sizes = [b.num_rows for b in source.iter_batches(get_table("erp", "order_lines"), None, 2)]
    assert sizes == [2, 2, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_missing_table_is_named(kind: str, tmp_path: Path) -> None:
    data = base_data()["erp"]
    del data["invoices"]
    url = make_source_url(kind, tmp_path, "erp", data)
    with open_source("erp", url) as source, pytest.raises(ContractError) as err:
        source.check_contract()
    assert "erp.invoices: table 'invoices' is missing" in str(err.value)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_column_is_named_with_its_type(kind: str, tmp_path: Path) -> None:
    data = base_data()["erp"]
    for row in data["orders"]:
        del row["order_date"]
    url = _write_without_column(kind, tmp_path, data, "orders", "order_date")
    with open_source("erp", url) as source, pytest.raises(ContractError) as err:
        source.check_contract()
    assert "erp.orders: column 'order_date' is missing (expected date)" in str(err.value)
    assert err.value.problems == ["erp.orders: column 'order_date' is missing (expected date)"]


def _write_without_column(kind: str, tmp_path: Path, data, table_name: str, column: str) -> str:
    """Write a source in which one table lacks one contract column."""
    table = get_table("erp", table_name)
    if kind == "sqlite":
        path = tmp_path / "erp.sqlite"
        write_sqlite(path, "erp", {k: v for k, v in data.items() if k != table_name})
        con = sqlite3.connect(path)
        names = [c for c in table.column_names if c != column]
        con.execute(f"create table {table_name} ({', '.join(names)})")
        con.executemany(
            f"insert into {table_name} values ({', '.join('?' for _ in names)})",
            [[sqlite_value(r[n]) for n in names] for r in data[table_name]],
        )
        con.commit()
        con.close()
        return f"sqlite:///{path}"
    folder = tmp_path / f"erp_{kind}"
    WRITERS[kind](folder, "erp", {k: v for k, v in data.items() if k != table_name})
    schema = pa.schema([f for f in arrow_schema(table) if f.name != column])
    arrow = pa.Table.from_pylist(data[table_name], schema=schema)
    if kind == "parquet":
        pq.write_table(arrow, folder / f"{table_name}.parquet")
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(arrow, folder / f"{table_name}.csv")
    return str(folder)


@pytest.mark.parametrize("kind", ["sqlite", "csv"])
def test_column_mostly_unreadable_breaks_the_contract(kind: str, tmp_path: Path) -> None:
    data = base_data()["erp"]
    for order in data["orders"][1:]:  # 2 of 3 values: more than half the sample
        order["order_date"] = "not a date"
    url = make_source_url(kind, tmp_path, "erp", data)
    with open_source("erp", url) as source, pytest.raises(ContractError) as err:
        source.check_contract()
    message = str(err.value)
    assert (
        "erp.orders: column 'order_date' cannot be read as date "
        "(2 of 3 sampled values unreadable, e.g. 'not a date' for order_id='O2')"
    ) in message


@pytest.mark.parametrize("kind", ["sqlite", "csv"])
def test_single_unreadable_value_is_flagged_not_fatal(kind: str, tmp_path: Path) -> None:
    """One bad value: the contract holds, every row is yielded, the bad one is flagged with
    its original text and its value nulled, the others are untouched."""
    data = base_data()["erp"]
    data["order_lines"][4]["quantity"] = "lots"
    data["orders"][2]["order_date"] = "2026-13-45"
    url = make_source_url(kind, tmp_path, "erp", data)
    with open_source("erp", url) as source:
        source.check_contract()  # 1 of 3 order dates, 1 of 5 quantities: single bad rows
        lines = read_flagged(source, get_table("erp", "order_lines"), chunk_rows=2)
        orders = read_flagged(source, get_table("erp", "orders"))
    assert len(lines) == len(data["order_lines"])
    flagged = [r for r in lines if r[UNREADABLE] is not None]
    assert [(r["order_id"], r["line_no"]) for r in flagged] == [
        (data["order_lines"][4]["order_id"], data["order_lines"][4]["line_no"])
    ]
    # files also say where the row is (UNREADABLE_AT): line of a CSV, row of a Parquet file
    at_line = {
        "csv": {"_at": "order_lines.csv line 6"},
        "parquet": {"_at": "order_lines.parquet row 5"},
    }
    at_order = {"csv": {"_at": "orders.csv line 4"}, "parquet": {"_at": "orders.parquet row 3"}}
    assert json.loads(flagged[0][UNREADABLE]) == {"quantity": "lots", **at_line.get(kind, {})}
    assert flagged[0]["quantity"] is None
    assert flagged[0]["unit_price"] == data["order_lines"][4]["unit_price"]
    assert [json.loads(r[UNREADABLE]) if r[UNREADABLE] else None for r in orders] == [
        None,
        None,
        {"order_date": "2026-13-45", **at_order.get(kind, {})},
    ]


def test_integer_column_flags_fractions(tmp_path: Path) -> None:
    data = base_data()["erp"]
    data["clients"][0]["payment_terms_days"] = 30.5
    url = make_source_url("sqlite", tmp_path, "erp", data)
    with open_source("erp", url) as source:
        source.check_contract()
        clients = read_flagged(source, get_table("erp", "clients"))
    assert clients[0]["payment_terms_days"] is None
    assert json.loads(clients[0][UNREADABLE]) == {"payment_terms_days": "30.5"}
    assert clients[1]["payment_terms_days"] == 60 and clients[1][UNREADABLE] is None


def test_file_row_with_unreadable_incremental_column_is_always_passed_on(
    tmp_path: Path,
) -> None:
    """A CSV row whose updated_at cannot be read cannot be filtered by ``since``: it is
    yielded (flagged) on every incremental read, never silently skipped."""
    data = base_data()["erp"]
    data["clients"][0]["updated_at"] = "yesterday"
    url = make_source_url("csv", tmp_path, "erp", data)
    with open_source("erp", url) as source:
        rows = read_flagged(source, get_table("erp", "clients"), since=T("2026-01-03 00:00:00"))
    assert [(r["client_id"], r[UNREADABLE]) for r in rows] == [
        ("C1", '{"updated_at": "yesterday", "_at": "clients.csv line 2"}'),
        ("C3", None),
    ]


def test_names_match_case_insensitively_and_extra_columns_are_ignored(tmp_path: Path) -> None:
    data = base_data()["crm"]
    path = tmp_path / "crm.sqlite"
    write_sqlite(path, "crm", {k: v for k, v in data.items() if k != "managers"})
    con = sqlite3.connect(path)
    con.execute(
        'create table "Managers" ("Manager_ID" text, "MANAGER_NAME" text, "Level" text, '
        "team text, hired_at date, left_at date, favourite_colour text)"
    )
    con.executemany(
        "insert into Managers values (?, ?, ?, ?, ?, ?, 'blue')",
        [
            [sqlite_value(r[c]) for c in get_table("crm", "managers").column_names]
            for r in data["managers"]
        ],
    )
    con.commit()
    con.close()
    with open_source("crm", f"sqlite:///{path}") as source:
        source.check_contract()
        table = get_table("crm", "managers")
        assert read_all(source, table) == expected_rows(table, data["managers"])


def test_sqlite_types_are_coerced_from_text(tmp_path: Path) -> None:
    """Loose SQLite typing: booleans as text, numbers as text, ISO 'T' timestamps."""
    data = base_data()["crm"]
    data["contacts"][0]["is_decision_maker"] = "yes"
    data["contacts"][1]["is_decision_maker"] = "0"
    data["interactions"][0]["satisfaction"] = "4"
    data["interactions"][0]["occurred_at"] = "2026-01-05T14:00:00+01:00"
    url = make_source_url("sqlite", tmp_path, "crm", data)
    with open_source("crm", url) as source:
        source.check_contract()
        contacts = read_all(source, get_table("crm", "contacts"))
        interactions = read_all(source, get_table("crm", "interactions"))
    assert [c[5] for c in contacts] == [True, False]
    assert interactions[0][7] == 4
    assert interactions[0][4] == T("2026-01-05 13:00:00")  # offset converted to UTC


def test_parquet_wins_over_csv_and_missing_folder_is_reported(tmp_path: Path) -> None:
    data = base_data()["erp"]
    folder = tmp_path / "erp"
    write_csv(folder, "erp", data)
    changed = copy.deepcopy(data)
    changed["clients"][0]["client_name"] = "From parquet"
    write_parquet(folder, "erp", {"clients": changed["clients"]})
    source = open_source("erp", str(folder))
    assert isinstance(source, FolderSource)
    names = [r[1] for r in read_all(source, get_table("erp", "clients"))]
    assert "From parquet" in names and "Acme" not in names
    with pytest.raises(SourceUnavailableError, match="erp source .*does not exist"):
        open_source("erp", str(tmp_path / "nowhere"))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://kam:s3cret@db.example:5432/erp", "postgresql://kam:***@db.example:5432/erp"),
        (
            "mysql+pymysql://u:p%40ss@host/db?charset=utf8",
            "mysql+pymysql://u:***@host/db?charset=utf8",
        ),
        ("postgresql://kam@host/db", "postgresql://kam@host/db"),
        (
            "postgresql://host/db?password=hunter2&sslmode=require",
            "postgresql://host/db?password=***&sslmode=require",
        ),
        ("sqlite:////data/erp.sqlite", "sqlite:////data/erp.sqlite"),
        ("/data/erp_files", "/data/erp_files"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_down_database_is_retried_then_reported_masked(caplog: pytest.LogCaptureFixture) -> None:
    url = "postgresql+psycopg2://kam:s3cret@127.0.0.1:1/erp"
    caplog.set_level(logging.WARNING, logger="pipelines.extract.connect")
    started = time.perf_counter()
    with pytest.raises(SourceUnavailableError) as err:
        open_source("erp", url, attempts=3, backoff_seconds=0.05, connect_timeout=1)
    elapsed = time.perf_counter() - started
    message = str(err.value)
    assert message.startswith("erp source postgresql+psycopg2://kam:***@127.0.0.1:1/erp")
    assert "unreachable after 3 attempts" in message
    assert "s3cret" not in message and "s3cret" not in caplog.text
    assert err.value.__cause__ is None and err.value.__suppress_context__
    attempts = [r for r in caplog.records if "connection attempt" in r.getMessage()]
    assert len(attempts) == 3
    assert elapsed >= 0.05 + 0.1  # the backoff was honoured
    assert elapsed < 30


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite"
    with pytest.raises(SourceUnavailableError, match="erp source sqlite:///.*does not exist"):
        open_source("erp", f"sqlite:///{path}")
    assert not path.exists()


def test_bad_system_and_table_of_other_system(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown source system"):
        open_source("billing", "sqlite:///x.sqlite")
    url = make_source_url("sqlite", tmp_path, "erp", base_data()["erp"])
    with open_source("erp", url) as source, pytest.raises(ValueError, match="not a table of erp"):
        list(source.iter_batches(get_table("crm", "managers"), None, 10))


# --------------------------------------------------------------------------- encodings (issue 9)


def _recode_clients(folder: Path, names: dict[str, str], encoding: str, whole: bool) -> None:
    """Rewrite clients.csv with new names; ``whole``: the whole file in ``encoding``,
    otherwise UTF-8 with only those names' bytes in ``encoding``."""
    path = folder / "clients.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    out = bytearray()
    for i, row in enumerate(rows):
        recode = i > 0 and row[0] in names
        if recode:
            row[1] = names[row[0]]
        text = ",".join(row) + "\n"
        out += text.encode("utf-8" if whole or not recode else encoding)
    path.write_bytes(bytes(out).decode("utf-8").encode(encoding) if whole else bytes(out))


def test_an_undecodable_csv_value_is_flagged_with_file_line_and_column(tmp_path: Path) -> None:
    data = base_data()["erp"]
    url = make_source_url("csv", tmp_path, "erp", data)
    _recode_clients(Path(url), {"C2": "Café Söhne"}, "latin-1", whole=False)
    with open_source("erp", url) as source:
        source.check_contract()  # one bad value: not the file's encoding
        rows = read_flagged(source, get_table("erp", "clients"))
    bad = [r for r in rows if r[UNREADABLE]]
    assert [r["client_id"] for r in bad] == ["C2"] and bad[0]["client_name"] is None
    assert json.loads(bad[0][UNREADABLE]) == {
        "client_name": "Caf\\xe9 S\\xf6hne",
        "_at": "clients.csv line 3, not valid utf-8: see KAM_CSV_ENCODING",
    }
    assert {r["client_id"]: r["segment"] for r in rows}["C2"] == data["clients"][1]["segment"]


def test_a_csv_file_in_another_encoding_is_named_with_the_setting(tmp_path: Path) -> None:
    data = base_data()["erp"]
    url = make_source_url("csv", tmp_path, "erp", data)
    names = {"C1": "Müller AG", "C2": "Café Söhne", "C3": "Ærø"}
    _recode_clients(Path(url), names, "latin-1", whole=True)
    with open_source("erp", url) as source, pytest.raises(ContractError) as exc:
        source.check_contract()
    message = str(exc.value)
    assert "clients.csv" in message and "KAM_CSV_ENCODING" in message
    assert "3 of 3 sampled values" in message
    # declared, it reads back exactly
    with open_source("erp", url, csv_encoding="latin-1") as source:
        source.check_contract()
        rows = read_flagged(source, get_table("erp", "clients"))
    assert {r["client_id"]: r["client_name"] for r in rows} == names
    assert all(r[UNREADABLE] is None for r in rows)


def test_a_utf16_csv_is_read_when_declared_and_named_when_not(tmp_path: Path) -> None:
    data = base_data()["erp"]
    url = make_source_url("csv", tmp_path, "erp", data)
    _recode_clients(Path(url), {"C1": "Müller AG"}, "utf-16", whole=True)
    with open_source("erp", url, csv_encoding="utf-16") as source:
        rows = read_flagged(source, get_table("erp", "clients"))
    assert {r["client_id"]: r["client_name"] for r in rows}["C1"] == "Müller AG"
    with open_source("erp", url) as source, pytest.raises(ContractError) as exc:
        source.check_contract()
    assert "clients.csv" in str(exc.value) and "KAM_CSV_ENCODING" in str(exc.value)
