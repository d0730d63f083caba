"""A small contract-shaped data set (ERP and CRM) and its writers: SQLite, Parquet, CSV
and PostgreSQL sources. Shared by the source, raw-loader, quarantine and extract-bench
tests."""

from __future__ import annotations

import copy
import csv
import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines.contract import Table, tables_of
from pipelines.extract.base import arrow_schema

D = date.fromisoformat
T = datetime.fromisoformat


def base_data() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """A small, contract-shaped ERP + CRM data set (fresh copy on every call)."""
    erp = {
        "clients": [
            dict(
                client_id="C1",
                client_name="Acme",
                segment="SMB",
                region="North",
                industry="Retail",
                account_manager_id="M1",
                declared_tier="key",
                payment_terms_days=30,
                created_at=T("2024-01-05 09:00:00"),
                updated_at=T("2026-01-01 08:00:00"),
            ),
            dict(
                client_id="C2",
                client_name="Bolt",
                segment="Enterprise",
                region="South",
                industry="Energy",
                account_manager_id="M2",
                declared_tier="KA",
                payment_terms_days=60,
                created_at=T("2024-02-01 10:30:00"),
                updated_at=T("2026-01-02 08:00:00"),
            ),
            dict(
                client_id="C3",
                client_name=None,
                segment="SMB",
                region=None,
                industry=None,
                account_manager_id=None,
                declared_tier=None,
                payment_terms_days=None,
                created_at=None,
                updated_at=T("2026-01-03 08:00:00"),
            ),
        ],
        "products": [
            dict(
                product_id="P1",
                product_name="Bolt M8",
                category="Hardware",
                updated_at=T("2025-06-01 00:00:00"),
            ),
            dict(
                product_id="P2",
                product_name="Nut M8",
                category="Hardware",
                updated_at=T("2025-06-02 00:00:00"),
            ),
        ],
        "orders": [
            dict(
                order_id="O1",
                client_id="C1",
                order_date=D("2026-01-10"),
                status="completed",
                updated_at=T("2026-01-10 10:00:00"),
            ),
            dict(
                order_id="O2",
                client_id="C2",
                order_date=D("2026-01-11"),
                status="returned",
                updated_at=T("2026-01-11 10:00:00"),
            ),
            dict(
                order_id="O3",
                client_id="C3",
                order_date=D("2026-01-12"),
                status="cancelled",
                updated_at=T("2026-01-12 10:00:00"),
            ),
        ],
        "order_lines": [
            dict(
                order_id="O1",
                line_no=1,
                product_id="P1",
                quantity=10.0,
                unit_price=2.5,
                unit_cost=1.5,
                discount=0.0,
            ),
            dict(
                order_id="O1",
                line_no=2,
                product_id="P2",
                quantity=4.0,
                unit_price=1.0,
                unit_cost=None,
                discount=0.5,
            ),
            dict(
                order_id="O2",
                line_no=1,
                product_id="P2",
                quantity=3.0,
                unit_price=1.0,
                unit_cost=0.4,
                discount=None,
            ),
            dict(
                order_id="O3",
                line_no=1,
                product_id="P1",
                quantity=1.0,
                unit_price=2.5,
                unit_cost=1.5,
                discount=0.0,
            ),
            dict(
                order_id="O3",
                line_no=2,
                product_id="P1",
                quantity=2.0,
                unit_price=2.5,
                unit_cost=1.5,
                discount=0.0,
            ),
        ],
        "invoices": [
            dict(
                invoice_id="I1",
                client_id="C1",
                order_id="O1",
                issued_date=D("2026-01-10"),
                due_date=D("2026-02-09"),
                amount=27.5,
                paid_date=D("2026-02-01"),
                updated_at=T("2026-02-01 12:00:00"),
            ),
            dict(
                invoice_id="I2",
                client_id="C2",
                order_id="O2",
                issued_date=D("2026-01-11"),
                due_date=D("2026-03-12"),
                amount=-3.0,
                paid_date=None,
                updated_at=T("2026-01-11 12:00:00"),
            ),
        ],
    }
    crm = {
        "managers": [
            dict(
                manager_id="M1",
                manager_name="Ann",
                level="specialist",
                team="North",
                hired_at=D("2020-01-01"),
                left_at=None,
            ),
            dict(
                manager_id="M2",
                manager_name="Bob",
                level="head",
                team="South",
                hired_at=D("2019-05-01"),
                left_at=None,
            ),
            dict(
                manager_id="M3",
                manager_name="Cid",
                level="director",
                team=None,
                hired_at=None,
                left_at=D("2025-12-31"),
            ),
        ],
        "contacts": [
            dict(
                contact_id="K1",
                client_id="C1",
                full_name="Dee",
                position="CEO",
                level="director",
                is_decision_maker=True,
                started_at=D("2023-01-01"),
                left_at=None,
                updated_at=T("2025-01-01 00:00:00"),
            ),
            dict(
                contact_id="K2",
                client_id="C2",
                full_name="Eve",
                position="Buyer",
                level="specialist",
                is_decision_maker=False,
                started_at=None,
                left_at=D("2025-11-01"),
                updated_at=T("2025-11-01 00:00:00"),
            ),
        ],
        "interactions": [
            dict(
                interaction_id="X1",
                client_id="C1",
                contact_id="K1",
                manager_id="M1",
                occurred_at=T("2026-01-05 14:00:00"),
                channel="call",
                kind="touch",
                satisfaction=4,
                resolved_at=None,
                updated_at=T("2026-01-05 14:00:00"),
            ),
            dict(
                interaction_id="X2",
                client_id="C2",
                contact_id=None,
                manager_id="M2",
                occurred_at=T("2026-01-06 09:15:00"),
                channel="email",
                kind="complaint",
                satisfaction=None,
                resolved_at=T("2026-01-08 10:00:00.250000"),
                updated_at=T("2026-01-08 10:00:00.250000"),
            ),
        ],
    }
    return copy.deepcopy({"erp": erp, "crm": crm})


SQLITE_TYPES = {
    "string": "TEXT",
    "integer": "INTEGER",
    "double": "REAL",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


def sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    return v


def write_sqlite(path: Path, system: str, data: dict[str, list[dict[str, Any]]]) -> str:
    """(Re)write a SQLite source with the given rows; returns its SQLAlchemy URL."""
    con = sqlite3.connect(path)
    try:
        for table in tables_of(system):
            if table.name not in data:
                continue
            con.execute(f"drop table if exists {table.name}")
            cols = ", ".join(f"{c.name} {SQLITE_TYPES[c.type]}" for c in table.columns)
            con.execute(f"create table {table.name} ({cols})")
            names = table.column_names
            con.executemany(
                f"insert into {table.name} values ({', '.join('?' for _ in names)})",
                [[sqlite_value(r[n]) for n in names] for r in data[table.name]],
            )
        con.commit()
    finally:
        con.close()
    return f"sqlite:///{path}"


def write_parquet(folder: Path, system: str, data: dict[str, list[dict[str, Any]]]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for table in tables_of(system):
        if table.name in data:
            pq.write_table(
                pa.Table.from_pylist(data[table.name], schema=arrow_schema(table)),
                folder / f"{table.name}.parquet",
            )
    return str(folder)


def write_csv(folder: Path, system: str, data: dict[str, list[dict[str, Any]]]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for table in tables_of(system):
        if table.name not in data:
            continue
        with (folder / f"{table.name}.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(table.column_names)
            for r in data[table.name]:
                writer.writerow(
                    ["" if r[n] is None else sqlite_value(r[n]) for n in table.column_names]
                )
    return str(folder)


def expected_rows(table: Table, rows: list[dict[str, Any]]) -> list[tuple]:
    """Rows as sorted tuples in contract column order (what the raw layer must hold)."""
    return sorted(
        (tuple(r[c] for c in table.column_names) for r in rows),
        key=lambda t: tuple(str(v) for v in t),
    )


WRITERS = {"sqlite": None, "parquet": write_parquet, "csv": write_csv}


def make_source_url(kind: str, tmp_path: Path, system: str, data) -> str:
    if kind == "sqlite":
        return write_sqlite(tmp_path / f"{system}.sqlite", system, data)
    return WRITERS[kind](tmp_path / f"{system}_{kind}", system, data)


PG_TYPES = {
    "string": sa.Text,
    "integer": sa.BigInteger,
    "double": sa.Float,
    "boolean": sa.Boolean,
    "date": sa.Date,
    "timestamp": sa.DateTime,
}


def write_postgres(url: str, system: str, data: dict[str, list[dict[str, Any]]]) -> None:
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        tables = []
        for table in tables_of(system):
            if table.name in data:
                tables.append(
                    sa.Table(
                        table.name,
                        meta,
                        *[sa.Column(c.name, PG_TYPES[c.type]()) for c in table.columns],
                    )
                )
        with engine.begin() as conn:
            meta.drop_all(conn)
            meta.create_all(conn)
            for t in tables:
                if data[t.name]:
                    conn.execute(t.insert(), data[t.name])
    finally:
        engine.dispose()
