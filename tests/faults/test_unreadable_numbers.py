"""Weak point: overflowing integers and integer epochs are quarantined, not a crash or 1970.

On a small generated ERP (SQLite, and the same tables as a folder of CSV files):

* ``payment_terms_days = 99999999999999999999`` in clients.csv, ``1e20`` in the SQLite
  source: extraction crashed with ``OverflowError`` and a traceback, naming nothing. Now the
  row is quarantined as ``unreadable_value`` naming the table, the column and the key.
* ``created_at = 1727654400000`` (epoch milliseconds) in a timestamp column was read as a
  day of 1970 and kept; now it is unreadable, quarantined naming the column.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from bad_inputs_support import sqlite_to_csv_folder

from pipelines.extract.raw_loader import extract_all
from pipelines.gate.quarantine import apply_quarantine

AS_OF = date(2026, 9, 30)
HUGE_TEXT = "99999999999999999999"
EPOCH_MS = 1727654400000


@pytest.fixture(scope="module")
def erp_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.generator import generate_demo

    out = tmp_path_factory.mktemp("unreadable_demo")
    generate_demo(out, clients=60, years=2, seed=9, end_date=AS_OF)
    return out / "erp.sqlite"


def _first_clients(db: Path, n: int) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute(f"select client_id from clients order by 1 limit {n}")]
    finally:
        con.close()


def _quarantined(work: Path, table: str) -> dict[str, tuple[str, str, dict]]:
    con = duckdb.connect(str(work), read_only=True)
    try:
        rows = con.execute(
            "select record_key, rule, rule_description, row_json from audit.quarantine "
            "where source_table = ?",
            [table],
        ).fetchall()
    finally:
        con.close()
    return {key: (rule, text, json.loads(row)) for key, rule, text, row in rows}


def _extract_and_judge(work: Path, erp_url: str) -> None:
    extract_all(work, erp_url, None, "run-1", chunk_rows=1000)
    con = duckdb.connect(str(work))
    try:
        apply_quarantine(con, "run-1", AS_OF, today=datetime.now().date())
    finally:
        con.close()


def _assert_unreadable(found: dict, key: str, column: str) -> None:
    key = f"client_id={key}"
    assert key in found, f"{key} not quarantined: {sorted(found)[:5]}"
    rule, text, _row = found[key]
    assert rule == "unreadable_value", found[key]
    assert column in text, found[key]


def test_overflow_and_epoch_in_sqlite_are_quarantined(erp_sqlite: Path, tmp_path: Path) -> None:
    db = tmp_path / "erp.sqlite"
    db.write_bytes(erp_sqlite.read_bytes())
    huge, epoch = _first_clients(db, 2)
    con = sqlite3.connect(db)
    con.execute("update clients set payment_terms_days = 1e20 where client_id = ?", (huge,))
    con.execute("update clients set created_at = ? where client_id = ?", (EPOCH_MS, epoch))
    con.commit()
    con.close()

    work = tmp_path / "work.duckdb"
    _extract_and_judge(work, f"sqlite:///{db}")
    found = _quarantined(work, "clients")
    _assert_unreadable(found, huge, "payment_terms_days")
    _assert_unreadable(found, epoch, "created_at")
    check = duckdb.connect(str(work), read_only=True)
    try:  # nothing read as 1970 reaches the valid rows
        assert check.execute(
            "select count(*) from raw_erp.clients where created_at < timestamp '1990-01-01'"
        ).fetchall() == [(0,)]
    finally:
        check.close()


def test_overflow_in_csv_is_quarantined(erp_sqlite: Path, tmp_path: Path) -> None:
    folder = sqlite_to_csv_folder(erp_sqlite, tmp_path / "erp")
    path = folder / "clients.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    column = header.index("payment_terms_days")
    rows[1][column] = HUGE_TEXT
    key = rows[1][header.index("client_id")]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)

    work = tmp_path / "work.duckdb"
    _extract_and_judge(work, str(folder))
    found = _quarantined(work, "clients")
    _assert_unreadable(found, key, "payment_terms_days")
    assert HUGE_TEXT in json.dumps(found[f"client_id={key}"][2])
