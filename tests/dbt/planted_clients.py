"""The planted clients of the clients marts' tests (tests/dbt/test_dbt_clients.py), whose
classification at D1 = 2026-09-30 is known by construction; test_dbt_history.py reuses them
for its planted history."""

from __future__ import annotations

import duckdb

from pipelines.extract.raw_schema import ensure_raw_schema

LOADED = "timestamp '2026-09-30 00:00:00'"


def populate_planted_clients(con: duckdb.DuckDBPyConnection) -> None:
    """Plant a few clients whose classification is known by construction (D1 = 2026-09-30)."""
    ensure_raw_schema(con)
    con.execute(
        f"""
        insert into raw_crm.managers (manager_id, manager_name, level, team, hired_at, left_at,
                                      _run_id, _loaded_at)
        values ('m1', 'Manager One', 'head', 'north', date '2020-01-01', null, 't', {LOADED})
        """
    )
    con.execute(
        f"""
        insert into raw_erp.products (product_id, product_name, category, updated_at, _run_id,
                                      _loaded_at)
        values ('p1', 'Product', 'cat', {LOADED}, 't', {LOADED})
        """
    )
    clients = [
        ("big", "retail"),  # weekly buyer, on time, the largest -> A, poor payer
        ("drop", "retail"),  # weekly, on time, a quarter of its baseline in the last 90 days
        ("gone", "horeca"),  # weekly until 2026-08-03 -> churned; decision maker left
        ("yearly", "retail"),  # once a year, 200 days after its last order
        ("newbie", "horeca"),  # first order 2026-09-10 -> acquisition
        ("noorders", "retail"),  # never ordered
    ]
    for client_id, segment in clients:
        con.execute(
            f"""
            insert into raw_erp.clients (client_id, client_name, segment, region, industry,
                account_manager_id, declared_tier, payment_terms_days, created_at, updated_at,
                _run_id, _loaded_at)
            values (?, ?, ?, 'north', 'food', 'm1', 'key', 30, timestamp '2020-01-01 00:00:00',
                    {LOADED}, 't', {LOADED})
            """,
            [client_id, client_id.title(), segment],
        )
    # Orders: (client, first day, number of weekly orders, amount before / from 2026-07-03).
    weekly = [("big", 57, 1000.0, 1000.0), ("drop", 57, 1000.0, 250.0), ("gone", 49, 500.0, 500.0)]
    for client_id, count, before, after in weekly:
        con.execute(
            f"""
            insert into raw_erp.orders (order_id, client_id, order_date, status, updated_at,
                                        _run_id, _loaded_at)
            select ? || '-' || i, ?, date '2025-09-01' + cast(7 * i as integer), 'completed',
                   {LOADED}, 't', {LOADED}
            from range(0, ?) as t(i)
            """,
            [client_id, client_id, count],
        )
        con.execute(
            f"""
            insert into raw_erp.order_lines (order_id, line_no, product_id, quantity, unit_price,
                                             unit_cost, discount, _run_id, _loaded_at)
            select order_id, 1, 'p1', 10,
                   case when order_date < date '2026-07-03' then ? else ? end / 10,
                   case when order_date < date '2026-07-03' then ? else ? end / 10 * 0.6,
                   0, 't', {LOADED}
            from raw_erp.orders where client_id = ?
            """,
            [before, after, before, after, client_id],
        )
    single = [
        ("yearly-1", "yearly", "2023-03-14", 5000.0),
        ("yearly-2", "yearly", "2024-03-14", 5000.0),
        ("yearly-3", "yearly", "2025-03-14", 5000.0),
        ("yearly-4", "yearly", "2026-03-14", 5000.0),
        ("newbie-1", "newbie", "2026-09-10", 300.0),
        ("newbie-2", "newbie", "2026-09-20", 300.0),
    ]
    for order_id, client_id, day, amount in single:
        con.execute(
            f"""
            insert into raw_erp.orders (order_id, client_id, order_date, status, updated_at,
                                        _run_id, _loaded_at)
            values (?, ?, cast(? as date), 'completed', {LOADED}, 't', {LOADED})
            """,
            [order_id, client_id, day],
        )
        con.execute(
            f"""
            insert into raw_erp.order_lines (order_id, line_no, product_id, quantity, unit_price,
                                             unit_cost, discount, _run_id, _loaded_at)
            values (?, 1, 'p1', 1, ?, ?, 0, 't', {LOADED})
            """,
            [order_id, amount, amount * 0.5],
        )
    # big: 2 late invoices of 4 (paid 42 days late; unpaid 60 days after due at D1).
    invoices = [
        ("i1", "2026-01-01", "2026-02-01", "2026-03-15"),
        ("i2", "2026-02-01", "2026-03-01", "2026-03-01"),
        ("i3", "2026-07-01", "2026-08-01", None),
        ("i4", "2026-08-01", "2026-09-01", "2026-09-01"),
    ]
    for invoice_id, issued, due, paid in invoices:
        con.execute(
            f"""
            insert into raw_erp.invoices (invoice_id, client_id, order_id, issued_date, due_date,
                amount, paid_date, updated_at, _run_id, _loaded_at)
            values (?, 'big', null, cast(? as date), cast(? as date), 100, cast(? as date),
                    {LOADED}, 't', {LOADED})
            """,
            [invoice_id, issued, due, paid],
        )
    con.execute(
        f"""
        insert into raw_crm.contacts (contact_id, client_id, full_name, position, level,
            is_decision_maker, started_at, left_at, updated_at, _run_id, _loaded_at)
        values ('k1', 'gone', 'Pat Buyer', 'CEO', 'director', true, date '2020-01-01',
                date '2026-09-01', {LOADED}, 't', {LOADED})
        """
    )
    con.execute(
        f"""
        insert into raw_crm.interactions (interaction_id, client_id, contact_id, manager_id,
            occurred_at, channel, kind, satisfaction, resolved_at, updated_at, _run_id, _loaded_at)
        values ('x1', 'big', null, 'm1', timestamp '2026-09-20 10:00:00', 'call', 'complaint',
                2, null, {LOADED}, 't', {LOADED})
        """
    )
