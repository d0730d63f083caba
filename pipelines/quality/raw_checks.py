"""The blocking checks of the raw layer, derived from the source contract."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from pipelines.contract import TABLES, Table
from pipelines.quality.checks import (
    CheckContext,
    FrameCheck,
    gx,
    key_expectations,
)

# Date/timestamp columns of the contract that may legitimately lie in the future.
FUTURE_ALLOWED_COLUMNS = frozenset({"due_date", "left_at"})


def end_of(day: date) -> datetime:
    return (
        datetime.combine(day, datetime.min.time()) + timedelta(days=1) - timedelta(microseconds=1)
    )


def _raw_table_checks(table: Table) -> list[FrameCheck]:
    asset = (table.system, table.name)
    relation = f"valid_{table.system}.{table.name}"  # what dbt reads (raw minus quarantine)
    keys = tuple(table.primary_key)
    checks = [
        FrameCheck(
            asset,
            "keys_unique_not_null",
            f"primary key {', '.join(keys)} is not null and unique",
            relation,
            keys,
            key_expectations(keys),
        )
    ]
    required = tuple(c.name for c in table.columns if not c.nullable and c.name not in keys)
    if required:
        checks.append(
            FrameCheck(
                asset,
                "required_not_null",
                f"required columns are not null: {', '.join(required)}",
                relation,
                required,
                lambda _ctx, cols=required: [
                    gx().ExpectColumnValuesToNotBeNull(column=c) for c in cols
                ],
                id_columns=keys,
            )
        )
    # References inside the same source system (cross-system links are not required).
    refs = {
        col: target
        for col, target in table.foreign_keys.items()
        if any(t.system == table.system and t.name == target[0] for t in TABLES)
    }
    if refs:
        cols = tuple(refs)

        def ref_query(
            _ctx: CheckContext, refs=refs, relation=relation, system=table.system, keys=keys
        ) -> str:
            selects = [f"c.{k}" for k in keys if k not in refs]
            joins = []
            for i, (col, (parent, parent_col)) in enumerate(refs.items()):
                selects += [f"c.{col}", f"p{i}.{parent_col} as {col}__ref"]
                joins.append(
                    f"left join (select distinct {parent_col} from valid_{system}.{parent}) p{i} "
                    f"on c.{col} = p{i}.{parent_col}"
                )
            return f"select {', '.join(selects)} from {relation} c " + " ".join(joins)

        checks.append(
            FrameCheck(
                asset,
                "references_exist",
                "referenced rows exist: "
                + ", ".join(f"{c} -> {p}.{pc}" for c, (p, pc) in refs.items()),
                relation,
                cols,
                lambda _ctx, cols=cols: [
                    gx().ExpectColumnPairValuesToBeEqual(column_A=c, column_B=f"{c}__ref")
                    for c in cols
                ],
                query=ref_query,
                id_columns=keys,
            )
        )
    allowed = {c.name: c.allowed for c in table.columns if c.allowed}
    if allowed:
        checks.append(
            FrameCheck(
                asset,
                "allowed_values",
                "categorical columns hold allowed values: " + ", ".join(allowed),
                relation,
                tuple(allowed),
                lambda _ctx, allowed=allowed: [
                    gx().ExpectColumnValuesToBeInSet(column=c, value_set=list(v))
                    for c, v in allowed.items()
                ],
                id_columns=keys,
            )
        )
    dated = tuple(
        c.name
        for c in table.columns
        if c.type in ("date", "timestamp") and c.name not in FUTURE_ALLOWED_COLUMNS
    )
    if dated:
        checks.append(
            FrameCheck(
                asset,
                "no_future_dates",
                "no date after the run's wall-clock date: " + ", ".join(dated),
                relation,
                dated,
                lambda ctx, dated=dated: [
                    gx().ExpectColumnValuesToBeBetween(column=c, max_value=end_of(ctx.today))
                    for c in dated
                ],
                query=lambda _ctx, dated=dated, relation=relation, keys=keys: (
                    "select "
                    + ", ".join(
                        [k for k in keys if k not in dated]
                        + [f"cast({c} as timestamp) as {c}" for c in dated]
                    )
                    + f" from {relation}"
                ),
                id_columns=keys,
            )
        )
    return checks


def raw_checks(tables: Iterable[Table] = TABLES) -> list[FrameCheck]:
    """The blocking checks of the raw layer, derived from the source contract."""
    return [check for table in tables for check in _raw_table_checks(table)]
