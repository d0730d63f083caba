"""Each row rule catches its planted bad row and passes the good rows (tiny raw DB)."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from pipelines.extract.raw_schema import ensure_raw_schema
from pipelines.gate.quarantine import apply_quarantine
from pipelines.gate.row_rules import ROW_RULES, RowRule, row_rules

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


def _copy(table: str, where: str, replace: str) -> str:
    return f"insert into {table} select * replace ({replace}) from {table} where {where}"


def _client(replace: str) -> str:
    return _copy("raw_erp.clients", "client_id = 'C1'", f"'C9' as client_id, {replace}")


def _product(replace: str) -> str:
    return _copy("raw_erp.products", "product_id = 'P1'", f"'P9' as product_id, {replace}")


def _order(replace: str) -> str:
    return _copy("raw_erp.orders", "order_id = 'O1'", f"'O9' as order_id, {replace}")


def _line(replace: str) -> str:
    return _copy(
        "raw_erp.order_lines", "order_id = 'O1' and line_no = 1", f"3 as line_no, {replace}"
    )


def _invoice(replace: str) -> str:
    return _copy("raw_erp.invoices", "invoice_id = 'I1'", f"'I9' as invoice_id, {replace}")


def _manager(replace: str) -> str:
    return _copy("raw_crm.managers", "manager_id = 'M1'", f"'M9' as manager_id, {replace}")


def _contact(replace: str) -> str:
    return _copy("raw_crm.contacts", "contact_id = 'K1'", f"'K9' as contact_id, {replace}")


def _interaction(replace: str) -> str:
    return _copy(
        "raw_crm.interactions", "interaction_id = 'X1'", f"'X9' as interaction_id, {replace}"
    )


C9, P9, O9, L3 = "client_id=C9", "product_id=P9", "order_id=O9", "order_id=O1|line_no=3"
I9, M9, K9, X9 = "invoice_id=I9", "manager_id=M9", "contact_id=K9", "interaction_id=X9"

# (rule, system, table, planting SQL, record key of the bad row)
CASES = [
    ("required_null", "erp", "clients", _client("null as segment"), C9),
    ("value_not_allowed", "erp", "clients", _client("'VIP' as declared_tier"), C9),
    ("future_date", "erp", "clients", _client("timestamp '2026-06-02' as updated_at"), C9),
    ("required_null", "erp", "products", _product("null as updated_at"), P9),
    ("future_date", "erp", "products", _product("timestamp '2027-01-01' as updated_at"), P9),
    ("required_null", "erp", "orders", _order("null as order_date"), O9),
    ("value_not_allowed", "erp", "orders", _order("'lost' as status"), O9),
    ("unknown_client", "erp", "orders", _order("'CX' as client_id"), O9),
    ("future_date", "erp", "orders", _order("date '2026-06-02' as order_date"), O9),
    ("date_before_1990", "erp", "orders", _order("date '1989-12-31' as order_date"), O9),
    ("required_null", "erp", "order_lines", _line("null as quantity"), L3),
    ("unknown_order", "erp", "order_lines", _line("'OX' as order_id"), "order_id=OX|line_no=3"),
    ("unknown_product", "erp", "order_lines", _line("'PX' as product_id"), L3),
    ("non_finite_number", "erp", "order_lines", _line("'nan'::double as unit_cost"), L3),
    ("negative_on_completed_order", "erp", "order_lines", _line("-2 as quantity"), L3),
    # each factor finite, the product overflows to inf
    (
        "amount_out_of_range",
        "erp",
        "order_lines",
        _line("1e300 as quantity, 1e10 as unit_price"),
        L3,
    ),
    ("required_null", "erp", "invoices", _invoice("null as amount"), I9),
    ("unknown_client", "erp", "invoices", _invoice("'CX' as client_id"), I9),
    ("non_finite_number", "erp", "invoices", _invoice("'inf'::double as amount"), I9),
    ("future_date", "erp", "invoices", _invoice("date '2026-07-01' as issued_date"), I9),
    ("date_before_1990", "erp", "invoices", _invoice("date '1980-01-01' as issued_date"), I9),
    ("due_before_issued", "erp", "invoices", _invoice("date '2026-01-09' as due_date"), I9),
    ("amount_out_of_range", "erp", "invoices", _invoice("-1e13 as amount"), I9),
    ("required_null", "crm", "managers", _manager("null as level"), M9),
    ("value_not_allowed", "crm", "managers", _manager("'boss' as level"), M9),
    ("future_date", "crm", "managers", _manager("date '2027-01-01' as hired_at"), M9),
    ("left_before_started", "crm", "managers", _manager("date '2019-01-01' as left_at"), M9),
    ("required_null", "crm", "contacts", _contact("null as is_decision_maker"), K9),
    ("value_not_allowed", "crm", "contacts", _contact("'intern' as level"), K9),
    ("unknown_client", "crm", "contacts", _contact("'CX' as client_id"), K9),
    ("future_date", "crm", "contacts", _contact("date '2026-12-01' as started_at"), K9),
    ("left_before_started", "crm", "contacts", _contact("date '2020-12-31' as left_at"), K9),
    ("required_null", "crm", "interactions", _interaction("null as manager_id"), X9),
    ("value_not_allowed", "crm", "interactions", _interaction("'fax' as channel"), X9),
    ("unknown_client", "crm", "interactions", _interaction("'CX' as client_id"), X9),
    (
        "future_date",
        "crm",
        "interactions",
        _interaction("timestamp '2026-06-03 08:00' as occurred_at, null as resolved_at"),
        X9,
    ),
    (
        "date_before_1990",
        "crm",
        "interactions",
        _interaction("timestamp '1985-01-01' as occurred_at, null as resolved_at"),
        X9,
    ),
    ("satisfaction_out_of_range", "crm", "interactions", _interaction("6 as satisfaction"), X9),
    (
        "resolved_before_occurred",
        "crm",
        "interactions",
        _interaction("timestamp '2026-01-04' as resolved_at"),
        X9,
    ),
]


def _quarantine(con) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    apply_quarantine(con, "run-test", AS_OF, today=TODAY)
    rows = con.execute(
        "select system, source_table, record_key, rule, other_rules from audit.quarantine"
    ).fetchall()
    return {(s, t, k): (rule, other) for s, t, k, rule, other in rows}


def test_good_rows_pass_every_rule() -> None:
    con = good_db()
    assert _quarantine(con) == {}
    for (system, table), keys in GOOD_KEYS.items():
        assert con.execute(f"select count(*) from valid_{system}.{table}").fetchall()[0][0] == len(
            keys
        )


@pytest.mark.parametrize(
    ("rule", "system", "table", "plant", "key"),
    CASES,
    ids=[f"{c[1]}.{c[2]}:{c[0]}" for c in CASES],
)
def test_rule_catches_its_bad_row(rule: str, system: str, table: str, plant: str, key: str) -> None:
    con = good_db()
    con.execute(plant)
    found = _quarantine(con)
    assert (system, table, key) in found, found
    first, others = found[(system, table, key)]
    assert rule == first or rule in (others or "").split(","), (first, others)
    # The good rows of the table are not hit by the rule (only propagation may move them).
    for (s, t, k), (first_rule, other_rules) in found.items():
        if (s, t) == (system, table) and k in GOOD_KEYS[(s, t)]:
            assert first_rule in ("parent_quarantined", "child_quarantined"), (k, first_rule)
            assert rule not in (other_rules or "").split(",")


def test_every_rule_has_a_case() -> None:
    declared = {(r.system, r.table, r.name) for r in ROW_RULES}
    tested = {(s, t, rule) for rule, s, t, _, _ in CASES}
    assert declared == tested


def test_satisfaction_bounds_are_inclusive() -> None:
    con = good_db()
    con.execute(_interaction("1 as satisfaction"))
    con.execute(
        _copy(
            "raw_crm.interactions",
            "interaction_id = 'X1'",
            "'X8' as interaction_id, 5 as satisfaction",
        )
    )
    con.execute(
        _copy(
            "raw_crm.interactions",
            "interaction_id = 'X1'",
            "'X7' as interaction_id, 0 as satisfaction",
        )
    )
    found = _quarantine(con)
    assert set(found) == {("crm", "interactions", "interaction_id=X7")}


def test_null_key_is_quarantined_with_a_readable_key() -> None:
    con = good_db()
    con.execute(_copy("raw_erp.clients", "client_id = 'C1'", "null as client_id"))
    found = _quarantine(con)
    assert found[("erp", "clients", "client_id:null")][0] == "required_null"


def test_rule_rejects_unknown_table() -> None:
    with pytest.raises(KeyError):
        RowRule("x", "erp", "nope", "d", "true")


@pytest.mark.parametrize(
    ("replace", "hit"),
    [
        ("1e300 as unit_price", True),  # an absurd price on one line
        ("1e6 as quantity, 1e6 as unit_price", True),  # exactly the bound: out
        ("1e6 as quantity, 999999 as unit_price", False),  # just below
        ("1e6 as quantity, 1e7 as unit_cost", True),  # the cost overflows the bound
        ("1e6 as quantity, null as unit_cost", False),  # unknown cost: nothing to judge
        ("-1e12 as discount", True),
        ("'inf'::double as unit_price, 0 as quantity", True),  # inf x 0 = NaN
    ],
)
def test_amount_rule_bounds_the_computed_amount(replace: str, hit: bool) -> None:
    con = good_db()
    con.execute(_line(replace))
    found = _quarantine(con)
    rules = {found[("erp", "order_lines", L3)][0]} if ("erp", "order_lines", L3) in found else set()
    if ("erp", "order_lines", L3) in found:
        rules |= set((found[("erp", "order_lines", L3)][1] or "").split(","))
    assert ("amount_out_of_range" in rules) is hit, found
    if hit:  # orders are kept whole: the line's order goes with it, its other lines too
        assert found[("erp", "orders", "order_id=O1")][0] == "child_quarantined"
        assert found[("erp", "order_lines", "order_id=O1|line_no=1")][0] == "parent_quarantined"


def test_amount_bound_is_the_runs_setting() -> None:
    con = good_db()  # lines O1|1 = 2 x 10.0, O1|2 = 1 x 20.0, O2|1 = -1 x 10.0; invoice 38.5
    apply_quarantine(con, "run-test", AS_OF, today=TODAY, rules=row_rules(max_line_amount=20.0))
    rows = con.execute(
        "select source_table, record_key from audit.quarantine where rule = 'amount_out_of_range'"
    ).fetchall()
    assert sorted(rows) == [
        ("invoices", "invoice_id=I1"),
        ("order_lines", "order_id=O1|line_no=1"),
        ("order_lines", "order_id=O1|line_no=2"),
    ]
    with pytest.raises(ValueError):
        row_rules(max_line_amount=float("inf"))
