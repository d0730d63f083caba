"""Indexes on the published PostgreSQL marts: BI filters by a mart's key.

One client's history was a sequential scan (135 ms at 418k rows, growing every day). Each
mart gets a b-tree index on its key columns; ``client_status_history`` on ``as_of_date``
and on ``client_id`` separately (a day's snapshot, one client's trend). Built in the new
schema inside the publish transaction, before the swap, so readers never see a table
without its indexes. Columns a table does not have are skipped (a mart that changed shape
still publishes; the index is simply not made).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg2 import sql

#: mart -> indexes (each a tuple of columns). A mart not listed is indexed on its first
#: column when that column's name ends in ``_id`` (the contracts put the key first).
MART_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "client_status_history": (("as_of_date",), ("client_id",)),
    "client_stage_transitions": (("client_id",),),
    "kam_actions": (("action_id",), ("manager_id",), ("client_id",)),
    "kam_action_log": (("action_id",), ("manager_id",), ("client_id",)),
    "manager_portfolio": (("manager_id",),),
    "fct_orders": (("order_id",), ("client_id",)),
    "segment_churn_definition": (("segment",),),
    "client_overview": (("client_id",), ("account_manager_id",)),
}


def planned_indexes(table: str, columns: Sequence[str]) -> list[tuple[str, ...]]:
    """The indexes made on ``table`` with these columns (in order)."""
    present = set(columns)
    declared = MART_INDEXES.get(table)
    if declared is None:
        declared = ((columns[0],),) if columns and columns[0].endswith("_id") else ()
    return [cols for cols in declared if set(cols) <= present]


def create_indexes(cur: Any, schema: str, tables: Mapping[str, Sequence[str]]) -> list[str]:
    """Create the indexes of every table (name -> its columns) in ``schema``; their names."""
    made = []
    for table, columns in sorted(tables.items()):
        for cols in planned_indexes(table, columns):
            name = f"{table}__{'__'.join(cols)}_idx"[:63]
            cur.execute(
                sql.SQL("CREATE INDEX {} ON {}.{} ({})").format(
                    sql.Identifier(name),
                    sql.Identifier(schema),
                    sql.Identifier(table),
                    sql.SQL(", ").join(sql.Identifier(c) for c in cols),
                )
            )
            made.append(f"{schema}.{name}")
    return made
