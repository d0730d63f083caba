"""dbt staging + core (fct_orders, dim_clients) on a tiny hand-made raw layer, checked by hand.

Runs the real dbt project (`dbt build --select staging core`, which includes the
data tests and unit tests of those models) with the venv's dbt in a subprocess, against a
work DB created in tmp_path. dbt's target/ and logs/ go to tmp_path as well.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from dbt_support import HISTORY_DAYS, query, run_dbt

from pipelines.contract import DUCKDB_TYPES, TABLES
from pipelines.extract.raw_schema import ensure_raw_schema

AS_OF = "2026-09-30"

pytestmark = pytest.mark.usefixtures("dbt_executable")

RAW_ROWS: dict[str, list[str]] = {
    "raw_erp.clients": [
        # client_id, client_name, segment, region, industry, account_manager_id,
        # declared_tier, payment_terms_days, created_at, updated_at
        "(' c1 ', 'Alpha', 'retail', 'north', 'food', 'm1', 'KA', 30, "
        "'2024-01-01 10:00', '2026-01-01 00:00', 'r', now())",
        "('c2', 'Beta', 'wholesale', 'south', null, 'm2', 'general', 45, "
        "'2025-05-01 10:00', '2026-01-01 00:00', 'r', now())",
        "('c3', 'Gamma', 'retail', null, null, null, null, null, null, "
        "'2026-01-01 00:00', 'r', now())",
    ],
    "raw_erp.products": [
        "('p1', 'Widget', 'parts', '2026-01-01', 'r', now())",
        "('p2', 'Gadget', 'parts', '2026-01-01', 'r', now())",
    ],
    "raw_erp.orders": [
        "('o1', ' c1 ', '2026-09-01', 'completed', '2026-09-01', 'r', now())",
        "('o2', 'c1', '2026-09-10', 'returned', '2026-09-11', 'r', now())",
        "('o3', 'c2', '2026-09-15', 'cancelled', '2026-09-15', 'r', now())",
        "('o4', 'c2', '2026-10-01', 'completed', '2026-10-01', 'r', now())",  # after as-of
        "('o5', 'c2', '2026-09-30', 'completed', '2026-09-30', 'r', now())",  # no lines
    ],
    "raw_erp.order_lines": [
        # order_id, line_no, product_id, quantity, unit_price, unit_cost, discount
        "('o1', 1, 'p1', 2, 10.5, 4, 1, 'r', now())",
        "('o1', 2, 'p2', 1, 7.25, null, null, 'r', now())",
        "('o2', 1, 'p1', 1, 20, 12, 0, 'r', now())",
        "('o3', 1, 'p2', 5, 3, 1, 0, 'r', now())",
        "('o4', 1, 'p1', 100, 100, 1, 0, 'r', now())",
    ],
    "raw_crm.managers": [
        "('m1', 'Ann Lee', 'specialist', 'north', '2020-01-01', null, 'r', now())",
    ],
}

# Computed by hand from RAW_ROWS (docs/rules.md, Money):
# o1 completed: gross 2*10.5 + 7.25 = 28.25, discount 1, net 27.25, known cost 2*4 = 8,
#    margin 19.25, line 2 has no cost.
# o2 returned: gross 20, net -20, cost -12, margin -8.
# o3 cancelled: gross 15, net 0, cost 0, margin 0, not revenue-bearing.
# o4 is after the as-of date: absent. o5 has no lines: all zero.
EXPECTED_ORDERS = [
    # order_id, client_id, line_count, gross, discount, net, cost_known, margin,
    # has_unknown_cost, is_revenue_bearing
    ("o1", "c1", 2, 28.25, 1.0, 27.25, 8.0, 19.25, True, True),
    ("o2", "c1", 1, 20.0, 0.0, -20.0, -12.0, -8.0, False, True),
    ("o3", "c2", 1, 15.0, 0.0, 0.0, 0.0, 0.0, False, False),
    ("o5", "c2", 0, 0.0, 0.0, 0.0, 0.0, 0.0, False, True),
]


@pytest.fixture(scope="module")
def built_work_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dbt_core")
    work_db = tmp / "kam_work.duckdb"
    con = duckdb.connect(str(work_db))
    try:
        ensure_raw_schema(con)
        for table, rows in RAW_ROWS.items():
            con.execute(f"insert into {table} values {', '.join(rows)}")
    finally:
        con.close()
    result = run_dbt(
        work_db,
        "build",
        "--select",
        "staging",
        "core",
        target=tmp / "target",
        dbt_vars={"as_of_date": AS_OF, "history_days": HISTORY_DAYS},
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # the unit tests of the money rule ran as part of the build
    assert "fct_orders::fct_orders_sign_by_status" in result.stdout
    return work_db


def test_staging_has_exactly_the_contract_columns(built_work_db: Path) -> None:
    for table in TABLES:
        rows = query(
            built_work_db,
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = 'staging' and table_name = 'stg_{table.system}__{table.name}' "
            "order by ordinal_position",
        )
        assert [name for name, _ in rows] == table.column_names, table.name
        assert [dtype.lower() for _, dtype in rows] == [
            DUCKDB_TYPES[c.type] for c in table.columns
        ], table.name


def test_staging_trims_text_and_defaults_discount(built_work_db: Path) -> None:
    assert query(
        built_work_db, "select client_id from staging.stg_erp__orders where order_id = 'o1'"
    ) == [("c1",)]
    assert query(
        built_work_db,
        "select discount from staging.stg_erp__order_lines where order_id = 'o1' and line_no = 2",
    ) == [(0.0,)]


def test_fct_orders_values(built_work_db: Path) -> None:
    rows = query(
        built_work_db,
        "select order_id, client_id, line_count, gross_revenue, discount_amount, net_revenue, "
        "cost_known, margin, has_unknown_cost, is_revenue_bearing "
        "from marts.fct_orders order by order_id",
    )
    assert rows == EXPECTED_ORDERS
    assert query(built_work_db, "select max(order_date)::varchar from marts.fct_orders") == [
        (AS_OF,)
    ]


def test_dim_clients_values(built_work_db: Path) -> None:
    rows = query(
        built_work_db,
        "select client_id, account_manager_name, manager_team, first_order_date::varchar, "
        "last_order_date::varchar, order_count from marts.dim_clients order by client_id",
    )
    assert rows == [
        ("c1", "Ann Lee", "north", "2026-09-01", "2026-09-10", 2),
        ("c2", None, None, "2026-09-30", "2026-09-30", 1),
        ("c3", None, None, None, None, 0),
    ]
