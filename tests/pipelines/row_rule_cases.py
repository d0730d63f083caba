"""The row rules' cases: a work DB of good raw rows (one per table) and, per rule, a planted
bad row with the key it must quarantine. Shared by test_row_rules.py and
test_quarantine.py."""

from __future__ import annotations

from datetime import date

import duckdb

from pipelines.extract.raw_schema import ensure_raw_schema

TODAY = date(2026, 6, 1)
AS_OF = date(2026, 5, 31)

GOOD = {
    "raw_erp.clients": [
        "('C1', 'Acme', 'retail', 'north', 'food', 'M1', 'KA', 30, '2020-01-01', '2026-01-01')",
        "('C2', 'Bolt', 'wholesale', 'south', 'tools', 'M1', null, 45, '2021-01-01', '2026-01-01')",
    ],
    "raw_erp.products": ["('P1', 'Widget', 'parts', '2026-01-01')"],
    "raw_erp.orders": [
        "('O1', 'C1', '2026-01-10', 'completed', '2026-01-10')",
        "('O2', 'C2', '2026-02-10', 'returned', '2026-02-10')",
    ],
    "raw_erp.order_lines": [
        "('O1', 1, 'P1', 2, 10.0, 5.0, 0)",
        "('O1', 2, 'P1', 1, 20.0, null, 1.5)",
        "('O2', 1, 'P1', -1, 10.0, 5.0, 0)",  # a negative line on a returned order is fine
    ],
    "raw_erp.invoices": [
        "('I1', 'C1', 'O1', '2026-01-10', '2026-02-10', 38.5, null, '2026-01-10')",
    ],
    "raw_crm.managers": ["('M1', 'Mia', 'head', 'east', '2020-01-01', null)"],
    "raw_crm.contacts": [
        "('K1', 'C1', 'Kim', 'CEO', 'director', true, '2021-01-01', null, '2026-01-01')",
    ],
    "raw_crm.interactions": [
        "('X1', 'C1', 'K1', 'M1', '2026-01-05 10:00', 'call', 'complaint', 4, "
        "'2026-01-06 09:00', '2026-01-06')",
    ],
}
GOOD_KEYS = {
    ("erp", "clients"): {"client_id=C1", "client_id=C2"},
    ("erp", "products"): {"product_id=P1"},
    ("erp", "orders"): {"order_id=O1", "order_id=O2"},
    ("erp", "order_lines"): {
        "order_id=O1|line_no=1",
        "order_id=O1|line_no=2",
        "order_id=O2|line_no=1",
    },
    ("erp", "invoices"): {"invoice_id=I1"},
    ("crm", "managers"): {"manager_id=M1"},
    ("crm", "contacts"): {"contact_id=K1"},
    ("crm", "interactions"): {"interaction_id=X1"},
}


def good_db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    ensure_raw_schema(con)
    for table, rows in GOOD.items():
        for row in rows:
            con.execute(f"insert into {table} values {row[:-1]}, 'seed', '2026-01-01')")
    return con


def copy_row(table: str, where: str, replace: str) -> str:
    return f"insert into {table} select * replace ({replace}) from {table} where {where}"


def client_row(replace: str) -> str:
    return copy_row("raw_erp.clients", "client_id = 'C1'", f"'C9' as client_id, {replace}")


def product_row(replace: str) -> str:
    return copy_row("raw_erp.products", "product_id = 'P1'", f"'P9' as product_id, {replace}")


def order_row(replace: str) -> str:
    return copy_row("raw_erp.orders", "order_id = 'O1'", f"'O9' as order_id, {replace}")


def line_row(replace: str) -> str:
    return copy_row(
        "raw_erp.order_lines", "order_id = 'O1' and line_no = 1", f"3 as line_no, {replace}"
    )


def invoice_row(replace: str) -> str:
    return copy_row("raw_erp.invoices", "invoice_id = 'I1'", f"'I9' as invoice_id, {replace}")


def manager_row(replace: str) -> str:
    return copy_row("raw_crm.managers", "manager_id = 'M1'", f"'M9' as manager_id, {replace}")


def contact_row(replace: str) -> str:
    return copy_row("raw_crm.contacts", "contact_id = 'K1'", f"'K9' as contact_id, {replace}")


def interaction_row(replace: str) -> str:
    return copy_row(
        "raw_crm.interactions", "interaction_id = 'X1'", f"'X9' as interaction_id, {replace}"
    )


C9, P9, O9, L3 = "client_id=C9", "product_id=P9", "order_id=O9", "order_id=O1|line_no=3"
I9, M9, K9, X9 = "invoice_id=I9", "manager_id=M9", "contact_id=K9", "interaction_id=X9"

# (rule, system, table, planting SQL, record key of the bad row)
CASES = [
    ("required_null", "erp", "clients", client_row("null as segment"), C9),
    ("value_not_allowed", "erp", "clients", client_row("'VIP' as declared_tier"), C9),
    ("future_date", "erp", "clients", client_row("timestamp '2026-06-02' as updated_at"), C9),
    ("required_null", "erp", "products", product_row("null as updated_at"), P9),
    ("future_date", "erp", "products", product_row("timestamp '2027-01-01' as updated_at"), P9),
    ("required_null", "erp", "orders", order_row("null as order_date"), O9),
    ("value_not_allowed", "erp", "orders", order_row("'lost' as status"), O9),
    ("unknown_client", "erp", "orders", order_row("'CX' as client_id"), O9),
    ("future_date", "erp", "orders", order_row("date '2026-06-02' as order_date"), O9),
    ("date_before_1990", "erp", "orders", order_row("date '1989-12-31' as order_date"), O9),
    ("required_null", "erp", "order_lines", line_row("null as quantity"), L3),
    ("unknown_order", "erp", "order_lines", line_row("'OX' as order_id"), "order_id=OX|line_no=3"),
    ("unknown_product", "erp", "order_lines", line_row("'PX' as product_id"), L3),
    ("non_finite_number", "erp", "order_lines", line_row("'nan'::double as unit_cost"), L3),
    ("negative_on_completed_order", "erp", "order_lines", line_row("-2 as quantity"), L3),
    # each factor finite, the product overflows to inf
    (
        "amount_out_of_range",
        "erp",
        "order_lines",
        line_row("1e300 as quantity, 1e10 as unit_price"),
        L3,
    ),
    ("required_null", "erp", "invoices", invoice_row("null as amount"), I9),
    ("unknown_client", "erp", "invoices", invoice_row("'CX' as client_id"), I9),
    ("non_finite_number", "erp", "invoices", invoice_row("'inf'::double as amount"), I9),
    ("future_date", "erp", "invoices", invoice_row("date '2026-07-01' as issued_date"), I9),
    ("date_before_1990", "erp", "invoices", invoice_row("date '1980-01-01' as issued_date"), I9),
    ("due_before_issued", "erp", "invoices", invoice_row("date '2026-01-09' as due_date"), I9),
    ("amount_out_of_range", "erp", "invoices", invoice_row("-1e13 as amount"), I9),
    ("required_null", "crm", "managers", manager_row("null as level"), M9),
    ("value_not_allowed", "crm", "managers", manager_row("'boss' as level"), M9),
    ("future_date", "crm", "managers", manager_row("date '2027-01-01' as hired_at"), M9),
    ("left_before_started", "crm", "managers", manager_row("date '2019-01-01' as left_at"), M9),
    ("required_null", "crm", "contacts", contact_row("null as is_decision_maker"), K9),
    ("value_not_allowed", "crm", "contacts", contact_row("'intern' as level"), K9),
    ("unknown_client", "crm", "contacts", contact_row("'CX' as client_id"), K9),
    ("future_date", "crm", "contacts", contact_row("date '2026-12-01' as started_at"), K9),
    ("left_before_started", "crm", "contacts", contact_row("date '2020-12-31' as left_at"), K9),
    ("required_null", "crm", "interactions", interaction_row("null as manager_id"), X9),
    ("value_not_allowed", "crm", "interactions", interaction_row("'fax' as channel"), X9),
    ("unknown_client", "crm", "interactions", interaction_row("'CX' as client_id"), X9),
    (
        "future_date",
        "crm",
        "interactions",
        interaction_row("timestamp '2026-06-03 08:00' as occurred_at, null as resolved_at"),
        X9,
    ),
    (
        "date_before_1990",
        "crm",
        "interactions",
        interaction_row("timestamp '1985-01-01' as occurred_at, null as resolved_at"),
        X9,
    ),
    ("satisfaction_out_of_range", "crm", "interactions", interaction_row("6 as satisfaction"), X9),
    (
        "resolved_before_occurred",
        "crm",
        "interactions",
        interaction_row("timestamp '2026-01-04' as resolved_at"),
        X9,
    ),
]
