"""A two-mart work DB small enough to reason about by hand, for the mart checks' tests."""

from __future__ import annotations

from pathlib import Path

import duckdb

#: the columns of the two marts, as the checks' applicability reads them
SMALL_MART_COLUMNS = {
    "marts.client_abc": ["client_id", "revenue_share", "is_ranked", "abc_class"],
    "marts.fct_orders": ["order_id", "order_date", "status"],
}


def write_small_marts(path: Path, third_client_id: str = "c3") -> Path:
    """client_abc (c1 A 0.7, c2 B 0.3, a third client not ranked) and fct_orders (one order
    on the as-of date 2026-09-30, one the day after: an order after the as-of date).
    ``third_client_id="c2"`` plants a duplicated client key."""
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.client_abc as select * from (values "
        "('c1', 0.7, true, 'A'), ('c2', 0.3, true, 'B'), (?, null, false, null)) "
        "t(client_id, revenue_share, is_ranked, abc_class)",
        [third_client_id],
    )
    con.execute(
        "create table marts.fct_orders as select * from (values "
        "('o1', date '2026-09-30', 'completed'), ('o2', date '2026-10-01', 'completed')) "
        "t(order_id, order_date, status)"
    )
    con.close()
    return path
