"""End to end on real data: the UCI Online Retail export, converted by the adapter, run
by ``kam run`` for 2011-12-09 (its last day), exactly as the README tells a user to.

The known answers are computed straight from the converted source files with DuckDB,
independently of dbt: the orders and their net revenue (domain rule: completed +,
returned -, cancelled 0) and the ABC classes (365-day window, clients with a positive
revenue in cents ranked by it, ties by client id, A while the share before the client is
below 80 %, B below 95 %).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

AS_OF = "2011-12-09"


def _expected(src: Path) -> dict:
    """Known answers from the converted files (never from the pipeline's outputs)."""
    con = duckdb.connect()
    con.execute(f"create view orders as select * from '{src / 'orders.parquet'}'")
    con.execute(f"create view lines as select * from '{src / 'order_lines.parquet'}'")
    orders = con.execute(
        "select count(*) from orders where cast(order_date as date) <= ?", [AS_OF]
    ).fetchone()[0]
    con.execute(
        f"""
        create view order_net as
        select o.order_id, o.client_id, cast(o.order_date as date) as order_date,
            sum(
                (l.quantity * l.unit_price - coalesce(l.discount, 0))
                * case o.status when 'completed' then 1 when 'returned' then -1 else 0 end
            ) as net_revenue
        from orders o join lines l on l.order_id = o.order_id
        where cast(o.order_date as date) <= date '{AS_OF}'
        group by o.order_id, o.client_id, o.order_date
        """
    )
    net = con.execute("select sum(net_revenue) from order_net").fetchone()[0]
    classes = dict(
        con.execute(
            f"""
            with per_client as (
                select client_id, sum(net_revenue) as revenue from order_net
                where order_date between date '{AS_OF}' - 364 and date '{AS_OF}'
                group by client_id having round(sum(net_revenue), 2) > 0  -- in cents
            ),
            ranked as (
                select coalesce(sum(revenue) over (
                    order by revenue desc, client_id
                    rows between unbounded preceding and 1 preceding), 0)
                    / sum(revenue) over () as share_before
                from per_client
            )
            select case when share_before < 0.80 then 'A'
                        when share_before < 0.95 then 'B' else 'C' end, count(*)
            from ranked group by 1
            """
        ).fetchall()
    )
    con.close()
    return {"orders": orders, "net_revenue": net, "classes": classes}


def test_online_retail_runs_end_to_end_with_known_answers(
    online_retail_src: Path, kam_on_online_retail
) -> None:
    src = online_retail_src
    warehouse = kam_on_online_retail.warehouse
    proc = kam_on_online_retail.kam("run", "--as-of", AS_OF)
    assert proc.returncode == 0, proc.stderr[-4000:]

    expected = _expected(src)
    wh = duckdb.connect(str(warehouse), read_only=True)
    try:
        orders, net = wh.execute(
            "select count(*), sum(net_revenue) from marts.fct_orders"
        ).fetchone()
        assert orders == expected["orders"] > 20_000
        assert net == pytest.approx(expected["net_revenue"], rel=1e-9)
        classes = dict(
            wh.execute(
                "select abc_class, count(*) from marts.client_abc "
                "where abc_class is not null group by 1"
            ).fetchall()
        )
        assert classes == expected["classes"]
        assert sum(classes.values()) > 4_000
        # the A clients hold at least 80 % of the revenue, and no more than the crosser adds
        a_share, last_a = wh.execute(
            "select sum(revenue_share), min(revenue_share) from marts.client_abc "
            "where abc_class = 'A'"
        ).fetchone()
        assert 0.80 <= a_share < 0.80 + last_a
        # clean converted data: nothing quarantined; no CRM: no action that needs the CRM
        # (a new decision maker, an open complaint); win-back plans work without one
        assert wh.execute(
            "select coalesce(sum(quarantined_rows), 0) from audit.quarantine_runs where rule = '*'"
        ).fetchone() == (0,)
        assert wh.execute(
            "select count(*) from marts.kam_actions "
            "where action_type in ('meet_new_decision_maker', 'resolve_open_complaint')"
        ).fetchone() == (0,)
    finally:
        wh.close()
