"""Each row rule catches its planted bad row and passes the good rows (tiny raw DB)."""

from __future__ import annotations

import pytest
from row_rule_cases import (
    AS_OF,
    CASES,
    GOOD_KEYS,
    L3,
    TODAY,
    copy_row,
    good_db,
    interaction_row,
    line_row,
)

from pipelines.gate.quarantine import apply_quarantine
from pipelines.gate.row_rules import ROW_RULES, RowRule, row_rules


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
    con.execute(interaction_row("1 as satisfaction"))
    con.execute(
        copy_row(
            "raw_crm.interactions",
            "interaction_id = 'X1'",
            "'X8' as interaction_id, 5 as satisfaction",
        )
    )
    con.execute(
        copy_row(
            "raw_crm.interactions",
            "interaction_id = 'X1'",
            "'X7' as interaction_id, 0 as satisfaction",
        )
    )
    found = _quarantine(con)
    assert set(found) == {("crm", "interactions", "interaction_id=X7")}


def test_null_key_is_quarantined_with_a_readable_key() -> None:
    con = good_db()
    con.execute(copy_row("raw_erp.clients", "client_id = 'C1'", "null as client_id"))
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
    con.execute(line_row(replace))
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
