"""The source contract: what a user maps their ERP and CRM to.

Declared once here; the connectors check it at the start of every run, the raw
loader creates the raw tables from it, and the generator writes to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import pyarrow as pa

ColumnType = Literal["string", "integer", "double", "boolean", "date", "timestamp"]
System = Literal["erp", "crm"]

# DuckDB type used in the raw layer for each contract type.
DUCKDB_TYPES: dict[str, str] = {
    "string": "varchar",
    "integer": "bigint",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}

# Arrow type of each contract type: what sources yield and the generator/adapters write.
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
assert set(DUCKDB_TYPES) == set(ARROW_TYPES) == set(get_args(ColumnType))


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True
    allowed: tuple[str, ...] | None = None  # allowed values for categorical text columns


@dataclass(frozen=True)
class Table:
    system: System
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # Column that drives incremental extraction (rows with a newer value are re-read).
    incremental_column: str | None = "updated_at"
    # For child tables without their own timestamp (order_lines): the parent table and
    # the key column they share. Changed parents bring all their children again, and
    # the children of a changed parent replace the stored ones.
    parent: tuple[str, str] | None = None
    description: str = ""
    foreign_keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.system}.{self.name} has no column {name!r}")


def _c(name: str, type_: ColumnType, nullable: bool = True, allowed=None) -> Column:
    return Column(name, type_, nullable, tuple(allowed) if allowed else None)


TIERS = ("KA", "key", "general")
ORDER_STATUSES = ("completed", "cancelled", "returned")
LEVELS = ("director", "head", "specialist")
CHANNELS = ("call", "email", "meeting", "visit", "message")
INTERACTION_KINDS = ("touch", "complaint", "feedback", "negotiation", "service")

TABLES: tuple[Table, ...] = (
    Table(
        "erp",
        "clients",
        (
            _c("client_id", "string", False),
            _c("client_name", "string"),
            _c("segment", "string", False),
            _c("region", "string"),
            _c("industry", "string"),
            _c("account_manager_id", "string"),
            _c("declared_tier", "string", True, TIERS),
            _c("payment_terms_days", "integer"),
            _c("created_at", "timestamp"),
            _c("updated_at", "timestamp", False),
        ),
        ("client_id",),
        description="One row per client (customer account).",
    ),
    Table(
        "erp",
        "products",
        (
            _c("product_id", "string", False),
            _c("product_name", "string"),
            _c("category", "string"),
            _c("updated_at", "timestamp", False),
        ),
        ("product_id",),
        description="Product catalogue.",
    ),
    Table(
        "erp",
        "orders",
        (
            _c("order_id", "string", False),
            _c("client_id", "string", False),
            _c("order_date", "date", False),
            _c("status", "string", False, ORDER_STATUSES),
            _c("updated_at", "timestamp", False),
        ),
        ("order_id",),
        description="Order headers; status completed / cancelled / returned.",
        foreign_keys={"client_id": ("clients", "client_id")},
    ),
    Table(
        "erp",
        "order_lines",
        (
            _c("order_id", "string", False),
            _c("line_no", "integer", False),
            _c("product_id", "string"),
            _c("quantity", "double", False),
            _c("unit_price", "double", False),
            _c("unit_cost", "double"),
            _c("discount", "double"),
        ),
        ("order_id", "line_no"),
        incremental_column=None,
        parent=("orders", "order_id"),
        description="Order lines; discount is an amount per line (default 0).",
        foreign_keys={"order_id": ("orders", "order_id"), "product_id": ("products", "product_id")},
    ),
    Table(
        "erp",
        "invoices",
        (
            _c("invoice_id", "string", False),
            _c("client_id", "string", False),
            _c("order_id", "string"),
            _c("issued_date", "date", False),
            _c("due_date", "date", False),
            _c("amount", "double", False),
            _c("paid_date", "date"),
            _c("updated_at", "timestamp", False),
        ),
        ("invoice_id",),
        description="Invoices; paid_date is null while open.",
        foreign_keys={"client_id": ("clients", "client_id")},
    ),
    Table(
        "crm",
        "managers",
        (
            _c("manager_id", "string", False),
            _c("manager_name", "string"),
            _c("level", "string", False, LEVELS),
            _c("team", "string"),
            _c("hired_at", "date"),
            _c("left_at", "date"),
        ),
        ("manager_id",),
        incremental_column=None,  # small table: read in full every run
        description="Our people: account managers and their leads.",
    ),
    Table(
        "crm",
        "contacts",
        (
            _c("contact_id", "string", False),
            _c("client_id", "string", False),
            _c("full_name", "string"),
            _c("position", "string"),
            _c("level", "string", False, LEVELS),
            _c("is_decision_maker", "boolean", False),
            _c("started_at", "date"),
            _c("left_at", "date"),
            _c("updated_at", "timestamp", False),
        ),
        ("contact_id",),
        description="The client's people; left_at is set when they leave the client.",
        foreign_keys={"client_id": ("clients", "client_id")},
    ),
    Table(
        "crm",
        "interactions",
        (
            _c("interaction_id", "string", False),
            _c("client_id", "string", False),
            _c("contact_id", "string"),
            _c("manager_id", "string", False),
            _c("occurred_at", "timestamp", False),
            _c("channel", "string", False, CHANNELS),
            _c("kind", "string", False, INTERACTION_KINDS),
            _c("satisfaction", "integer"),
            _c("resolved_at", "timestamp"),
            _c("updated_at", "timestamp", False),
        ),
        ("interaction_id",),
        description="Calls, emails, meetings, visits, messages; complaints carry resolved_at.",
        foreign_keys={"client_id": ("clients", "client_id")},
    ),
)

CONTRACT: dict[tuple[str, str], Table] = {(t.system, t.name): t for t in TABLES}


def tables_of(system: System) -> list[Table]:
    """Tables of one source system, parents before children."""
    return [t for t in TABLES if t.system == system]


def get_table(system: str, name: str) -> Table:
    try:
        return CONTRACT[(system, name)]
    except KeyError as exc:
        raise KeyError(f"no table {system}.{name} in the source contract") from exc


def contract_table() -> str:
    """The README's source contract table (Markdown), generated from :data:`TABLES`."""

    def describe(col: Column) -> str:
        allowed = f" ({'/'.join(col.allowed)})" if col.allowed else ""
        return f"{col.name}{allowed}"

    lines = [
        "| system | table | key | required (never NULL) | may be NULL |",
        "| --- | --- | --- | --- | --- |",
    ]
    for table in TABLES:
        others = [c for c in table.columns if c.name not in table.primary_key]
        required = ", ".join(describe(c) for c in others if not c.nullable) or "-"
        optional = ", ".join(describe(c) for c in others if c.nullable) or "-"
        lines.append(
            f"| {table.system.upper()} | `{table.name}` | {', '.join(table.primary_key)} "
            f"| {required} | {optional} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(contract_table())
