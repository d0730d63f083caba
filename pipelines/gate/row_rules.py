"""Row-level rules on the raw layer, declared next to the source contract.

A :class:`RowRule` is a SQL predicate over one raw table aliased ``r`` that is TRUE for a
bad row (NULL counts as "not bad"). ``pipelines.gate.quarantine`` moves the rows a rule hits
into ``audit.quarantine``; dbt reads ``valid_<system>.<table>`` (raw minus quarantined).

Two placeholders are filled in at run time: ``{today}`` (the run's wall-clock date, a
DuckDB ``date`` literal) and ``{as_of}`` (the run's as-of date).

The rules, in the order that decides which one is reported first for a row:

* derived from the contract: ``required_null`` (a NOT NULL column, key included, is
  null), ``value_not_allowed`` (a categorical value outside its set), ``unknown_<parent>``
  (a reference to a missing row: order_lines without an order or with an unknown product,
  orders / invoices / contacts / interactions of an unknown client), ``non_finite_number``
  (NaN or ±inf in a double column), ``future_date`` (a date after the run's wall-clock
  date, except ``due_date`` and ``left_at`` which may lie ahead);
* business rules: ``date_before_1990``, ``due_before_issued``, ``left_before_started``,
  ``negative_on_completed_order``, ``satisfaction_out_of_range``,
  ``resolved_before_occurred``, ``amount_out_of_range`` (an order line whose computed
  amount, |quantity × unit_price|, |quantity × unit_cost| or |discount|, or an invoice
  whose |amount| is not finite or at least ``KAM_MAX_LINE_AMOUNT``: its source columns
  may each be finite and still overflow to infinity once multiplied).

Rows read with a value that cannot be read as its contract type (``'lots'`` in a
numeric column, an unparsable date) never reach the raw tables: the loader keeps them in
``raw_meta.rejected_rows`` and the quarantine reports them as ``unreadable_value``.

Rows are also quarantined by propagation (not rules of this list, see
``pipelines.gate.quarantine``): ``parent_quarantined`` (a row whose referenced parent is
quarantined, e.g. the lines of a quarantined order, the orders of a quarantined client)
and ``child_quarantined`` (an order one of whose lines is quarantined: an order is kept
whole or not at all).

Rows whose key is read more than once in one extraction (a source without constraints)
are not stored either: ``pipelines.extract.raw_loader`` keeps every copy in
``raw_meta.rejected_rows`` with rule ``duplicate_key`` (none is picked), and the quarantine
reports each as ``duplicate_key``, with its values, until a read sends the key once again.
The raw table therefore holds a key at most once (the raw GX check
``keys_unique_not_null`` still asserts it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pipelines.contract import TABLES, Table, get_table
from pipelines.extract.raw_schema import (
    DUPLICATE_KEY,
    REJECTED_ROWS,
    raw_table_name,
    rejected_value_sql,
)
from pipelines.settings import declared_default

#: date/timestamp columns that may legitimately lie after today (kept in step with
#: pipelines.quality.raw_checks.FUTURE_ALLOWED_COLUMNS)
FUTURE_ALLOWED_COLUMNS = frozenset({"due_date", "left_at"})
#: fact dates that cannot be older than this
EARLIEST_FACT_DATE = date(1990, 1, 1)
FACT_DATE_COLUMNS = {("erp", "orders"): "order_date", ("erp", "invoices"): "issued_date"}

AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
#: the computed amounts of a row that must be finite and below KAM_MAX_LINE_AMOUNT
AMOUNT_EXPRESSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("erp", "order_lines"): ("r.quantity * r.unit_price", "r.quantity * r.unit_cost", "r.discount"),
    ("erp", "invoices"): ("r.amount",),
}

UNREADABLE_VALUE = "unreadable_value"
UNREADABLE_DESCRIPTION = "a value cannot be read as its contract type"
DUPLICATE_DESCRIPTION = (
    "its key was read more than once in one extraction (every copy kept aside): key"
)
PARENT_QUARANTINED = "parent_quarantined"
CHILD_QUARANTINED = "child_quarantined"
PROPAGATION_RULES = {
    PARENT_QUARANTINED: "the row it references (its client, order or product) is quarantined",
    # an unreadable row: the description names its unreadable columns
    UNREADABLE_VALUE: UNREADABLE_DESCRIPTION,
    CHILD_QUARANTINED: "one of its lines is quarantined: an order is kept whole or not at all",
    # a key read twice: the description names the key columns
    DUPLICATE_KEY: DUPLICATE_DESCRIPTION,
}


@dataclass(frozen=True)
class RowRule:
    """A row-level rule: ``predicate`` (SQL over the raw table aliased ``r``) is TRUE for a
    bad row of ``system.table``."""

    name: str
    system: str
    table: str
    description: str
    predicate: str

    def __post_init__(self) -> None:
        get_table(self.system, self.table)  # raises on an unknown table

    def sql(self, today: date, as_of: date) -> str:
        """The predicate with its placeholders filled in."""
        return self.predicate.format(today=f"date '{today.isoformat()}'", as_of=f"date '{as_of}'")


def parent_table(table: Table, parent_name: str) -> Table:
    """The table a foreign key points to: same system first (contacts -> erp.clients)."""
    same = [t for t in TABLES if t.name == parent_name and t.system == table.system]
    other = [t for t in TABLES if t.name == parent_name]
    found = same or other
    if not found:
        raise KeyError(f"{table.system}.{table.name}: no table {parent_name} in the contract")
    return found[0]


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name


def _contract_rules(table: Table) -> list[RowRule]:
    s, t = table.system, table.name
    rules: list[RowRule] = []
    required = [c.name for c in table.columns if not c.nullable]
    if required:
        rules.append(
            RowRule(
                "required_null",
                s,
                t,
                f"a required column is null ({', '.join(required)})",
                " or ".join(f"r.{c} is null" for c in required),
            )
        )
    allowed = [c for c in table.columns if c.allowed]
    if allowed:
        checks = []
        for c in allowed:
            values = ", ".join("'" + v.replace("'", "''") + "'" for v in c.allowed or ())
            checks.append(f"(r.{c.name} is not null and r.{c.name} not in ({values}))")
        rules.append(
            RowRule(
                "value_not_allowed",
                s,
                t,
                "a value outside its set: "
                + "; ".join(f"{c.name} in ({', '.join(c.allowed or ())})" for c in allowed),
                " or ".join(checks),
            )
        )
    for col, (parent_name, parent_col) in table.foreign_keys.items():
        parent = parent_table(table, parent_name)
        rules.append(
            RowRule(
                f"unknown_{_singular(parent_name)}",
                s,
                t,
                f"{col} refers to no row of {parent.system}.{parent_name}",
                f"r.{col} is not null and not exists (select 1 from {raw_table_name(parent)} p "
                f"where p.{parent_col} = r.{col}) and not exists (select 1 from "
                f"{REJECTED_ROWS} x where x.system = '{parent.system}' and x.table_name = "
                f"'{parent_name}' and {rejected_value_sql(parent_col)} = cast(r.{col} as varchar))",
            )
        )
    doubles = [c.name for c in table.columns if c.type == "double"]
    if doubles:
        rules.append(
            RowRule(
                "non_finite_number",
                s,
                t,
                f"an amount is not a number (NaN or infinite): {', '.join(doubles)}",
                " or ".join(f"isnan(r.{c}) or isinf(r.{c})" for c in doubles),
            )
        )
    dated = [
        c.name
        for c in table.columns
        if c.type in ("date", "timestamp") and c.name not in FUTURE_ALLOWED_COLUMNS
    ]
    if dated:
        rules.append(
            RowRule(
                "future_date",
                s,
                t,
                f"a date after the run's wall-clock date: {', '.join(dated)}",
                " or ".join(f"cast(r.{c} as date) > {{today}}" for c in dated),
            )
        )
    return rules


def _implausible(expression: str, bound: float) -> str:
    """TRUE when ``expression`` is NaN, infinite or at least ``bound`` in magnitude (NULL
    when it is NULL). DuckDB's double arithmetic overflows to inf, it does not raise."""
    return f"(isnan({expression}) or abs({expression}) >= {bound!r})"


def _amount_rules(max_line_amount: float) -> list[RowRule]:
    if not (max_line_amount > 0 and max_line_amount != float("inf")):
        raise ValueError(f"max_line_amount must be a positive finite number: {max_line_amount}")
    return [
        RowRule(
            AMOUNT_OUT_OF_RANGE,
            s,
            t,
            "a computed amount is not finite or implausibly large: "
            + ", ".join(f"|{e.replace('r.', '').replace(' * ', ' × ')}|" for e in exprs)
            + f" must be below KAM_MAX_LINE_AMOUNT={max_line_amount:g}",
            " or ".join(_implausible(e, max_line_amount) for e in exprs),
        )
        for (s, t), exprs in AMOUNT_EXPRESSIONS.items()
    ]


def _business_rules(max_line_amount: float) -> list[RowRule]:
    rules = [
        RowRule(
            "date_before_1990",
            s,
            t,
            f"{col} before {EARLIEST_FACT_DATE.isoformat()}",
            f"r.{col} < date '{EARLIEST_FACT_DATE.isoformat()}'",
        )
        for (s, t), col in FACT_DATE_COLUMNS.items()
    ]
    rules.append(
        RowRule(
            "date_before_1990",
            "crm",
            "interactions",
            f"occurred_at before {EARLIEST_FACT_DATE.isoformat()}",
            f"r.occurred_at < timestamp '{EARLIEST_FACT_DATE.isoformat()}'",
        )
    )
    rules += [
        RowRule(
            "due_before_issued",
            "erp",
            "invoices",
            "due_date before issued_date",
            "r.due_date < r.issued_date",
        ),
        RowRule(
            "left_before_started",
            "crm",
            "contacts",
            "left_at before started_at",
            "r.left_at < r.started_at",
        ),
        RowRule(
            "left_before_started",
            "crm",
            "managers",
            "left_at before hired_at",
            "r.left_at < r.hired_at",
        ),
        RowRule(
            "negative_on_completed_order",
            "erp",
            "order_lines",
            "negative quantity or unit_price on a completed order",
            "(r.quantity < 0 or r.unit_price < 0) and exists (select 1 from "
            "raw_erp.orders o where o.order_id = r.order_id and o.status = 'completed')",
        ),
        RowRule(
            "satisfaction_out_of_range",
            "crm",
            "interactions",
            "satisfaction outside 1..5",
            "r.satisfaction not between 1 and 5",
        ),
        RowRule(
            "resolved_before_occurred",
            "crm",
            "interactions",
            "resolved_at before occurred_at (a complaint resolved before it occurred)",
            "r.resolved_at < r.occurred_at",
        ),
    ]
    rules += _amount_rules(max_line_amount)
    return rules


def row_rules(
    tables: tuple[Table, ...] = TABLES, *, max_line_amount: float | None = None
) -> list[RowRule]:
    """Every row rule, contract-derived first, in reporting order.

    ``max_line_amount``: the bound of ``amount_out_of_range`` (the run's
    ``KAM_MAX_LINE_AMOUNT``; default: that setting's declared default)."""
    if max_line_amount is None:
        max_line_amount = declared_default("max_line_amount")
    names = {(t.system, t.name) for t in tables}
    rules = [rule for table in tables for rule in _contract_rules(table)]
    rules += [r for r in _business_rules(max_line_amount) if (r.system, r.table) in names]
    seen: set[tuple[str, str, str]] = set()
    for rule in rules:
        key = (rule.system, rule.table, rule.name)
        if key in seen:
            raise ValueError(f"rule {rule.name} declared twice for {rule.system}.{rule.table}")
        seen.add(key)
    return rules


ROW_RULES: list[RowRule] = row_rules()


def rules_for(system: str, table: str, rules: list[RowRule] | None = None) -> list[RowRule]:
    return [
        r for r in (ROW_RULES if rules is None else rules) if (r.system, r.table) == (system, table)
    ]
