"""Quarantine of bad raw rows: ``audit.quarantine`` and the ``valid_*`` views.

:func:`apply_quarantine` runs right after extraction on the work DB:

* ``audit.quarantine`` is rebuilt: one row per quarantined raw row (run_id,
  quarantined_at, system, source_table, record_key such as ``order_id=O1|line_no=2``,
  rule (the first rule of ``pipelines.gate.row_rules`` it breaks, or a propagation rule),
  rule_description, other_rules (the other rules it breaks, comma-separated, or null),
  row_json (the raw row, contract columns, as JSON text));
* ``audit.quarantine_runs`` gets this run's counts appended (re-running a run id replaces
  its rows): one row per table and rule that hit, plus one row per table with rule ``*``
  (every quarantined row of the table, zero included);
* views ``valid_<system>.<table>`` = raw rows minus quarantined ones (anti-join on the
  record key). dbt's sources read them. Every raw row is in exactly one of the two.

A table's row count (the denominator of its quarantined share) is its raw rows plus its
rejected rows (unreadable values, every copy of a duplicate key), so
``table_rows = valid + quarantined`` for every table.

``audit.deleted_rows`` is rebuilt from ``raw_meta.deleted_rows``: the rows removed from the
raw layer because the source no longer has them (key reconciliation), with their values.

The raw layer itself is never changed: the next run re-judges every row, so a row fixed
in the source (a newer ``updated_at`` re-reads it) leaves the quarantine by itself.

The batch-level gates judged on the quarantine are in ``pipelines.gate.batch_gates``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import duckdb

from pipelines.contract import TABLES, Table
from pipelines.extract.raw_schema import (
    DELETED_ROWS,
    DUPLICATE_KEY,
    ensure_raw_schema,
    raw_table_name,
    record_key_sql,
    rejected_rows_of,
    rejected_value_sql,
)
from pipelines.gate.row_rules import (
    CHILD_QUARANTINED,
    DUPLICATE_DESCRIPTION,
    PARENT_QUARANTINED,
    PROPAGATION_RULES,
    ROW_RULES,
    UNREADABLE_DESCRIPTION,
    UNREADABLE_VALUE,
    RowRule,
    parent_table,
)

__all__ = [
    "ALL_RULES",
    "QuarantineSummary",
    "RuleCount",
    "apply_quarantine",
    "valid_table_name",
]

log = logging.getLogger(__name__)

ALL_RULES = "*"  # quarantine_runs row holding a table's total
SAMPLE_KEYS = 5
_Q = "_kam_quarantine_hits"


def valid_schema_name(system: str) -> str:
    return f"valid_{system}"


def valid_table_name(table: Table) -> str:
    """The view dbt reads: raw rows of ``table`` minus the quarantined ones."""
    return f"{valid_schema_name(table.system)}.{table.name}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    rows = con.execute(sql, params or []).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


@dataclass(frozen=True)
class RuleCount:
    """Rows of one table quarantined under one rule (``*``: all rules) in one run."""

    system: str
    table: str
    rule: str
    quarantined_rows: int
    table_rows: int
    sample_keys: tuple[str, ...] = ()

    @property
    def share(self) -> float:
        return self.quarantined_rows / self.table_rows if self.table_rows else 0.0


@dataclass
class QuarantineSummary:
    """What :func:`apply_quarantine` did."""

    run_id: str
    as_of: date
    counts: list[RuleCount] = field(default_factory=list)
    seconds: float = 0.0

    def totals(self) -> list[RuleCount]:
        return [c for c in self.counts if c.rule == ALL_RULES]

    def by_rule(self) -> list[RuleCount]:
        return [c for c in self.counts if c.rule != ALL_RULES]

    def total(self, system: str, table: str) -> RuleCount:
        for c in self.totals():
            if (c.system, c.table) == (system, table):
                return c
        raise KeyError(f"{system}.{table}")

    @property
    def quarantined_rows(self) -> int:
        return sum(c.quarantined_rows for c in self.totals())

    def log_lines(self) -> list[str]:
        lines = [
            f"quarantine: {self.quarantined_rows} rows quarantined in "
            f"{sum(1 for c in self.totals() if c.quarantined_rows)} tables ({self.seconds:.2f} s)"
        ]
        for c in self.by_rule():
            lines.append(
                f"quarantine: {c.system}.{c.table} rule {c.rule}: {c.quarantined_rows} of "
                f"{c.table_rows} rows ({c.share:.3%}), e.g. {', '.join(c.sample_keys)}"
            )
        return lines


# --------------------------------------------------------------------------- DDL


def ensure_audit(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists audit")
    for system in sorted({t.system for t in TABLES}):
        con.execute(f"create schema if not exists {valid_schema_name(system)}")
    con.execute(
        """
        create table if not exists audit.quarantine_runs (
            run_id varchar, as_of_date date, system varchar, source_table varchar,
            rule varchar, quarantined_rows bigint, table_rows bigint, share double,
            recorded_at timestamp
        )
        """
    )


_QUARANTINE_DDL = """
create or replace table audit.quarantine (
    run_id varchar, quarantined_at timestamp, system varchar, source_table varchar,
    record_key varchar, rule varchar, rule_description varchar, other_rules varchar,
    row_json varchar
)
"""


# --------------------------------------------------------------------------- quarantine


def _rule_descriptions(rules: Sequence[RowRule]) -> dict[tuple[str, str, str], str]:
    out = {(r.system, r.table, r.name): r.description for r in rules}
    for table in TABLES:
        for name, text in PROPAGATION_RULES.items():
            out[(table.system, table.name, name)] = text
    return out


def _hit_rules(
    con: duckdb.DuckDBPyConnection, rules: Sequence[RowRule], today: date, as_of: date
) -> None:
    for order, rule in enumerate(rules):
        table = next(t for t in TABLES if (t.system, t.name) == (rule.system, rule.table))
        con.execute(
            f"insert into {_Q} select ?, ?, {record_key_sql(table)}, ?, ? "
            f"from {raw_table_name(table)} r where coalesce(({rule.sql(today, as_of)}), false)",
            [rule.system, rule.table, rule.name, order],
        )


def _quarantined_keys(table: Table) -> str:
    return (
        f"select record_key from {_Q} "
        f"where system = '{table.system}' and source_table = '{table.name}'"
    )


def _propagate(con: duckdb.DuckDBPyConnection, order: int) -> None:
    """Quarantine children of quarantined parents and orders of quarantined lines, until
    nothing changes."""
    edges = [
        (table, col, parent_table(table, parent_name), parent_col)
        for table in TABLES
        for col, (parent_name, parent_col) in table.foreign_keys.items()
    ]
    wholes = [
        (table, parent_table(table, table.parent[0]), table.parent[1])
        for table in TABLES
        if table.parent
    ]
    # Rows the loader could not read are not in the raw tables: the rows that reference
    # them and the orders of unreadable lines are quarantined once, here.
    for child, col, parent, parent_col in edges:
        con.execute(
            f"insert into {_Q} select ?, ?, {record_key_sql(child)}, ?, ? "
            f"from {raw_table_name(child)} r where cast(r.{col} as varchar) in ("
            f"select {rejected_value_sql(parent_col)} from {rejected_rows_of(parent)})",
            [child.system, child.name, PARENT_QUARANTINED, order],
        )
    for child, parent, key in wholes:
        con.execute(
            f"insert into {_Q} select ?, ?, {record_key_sql(parent)}, ?, ? "
            f"from {raw_table_name(parent)} r where cast(r.{key} as varchar) in ("
            f"select {rejected_value_sql(key)} from {rejected_rows_of(child)})",
            [parent.system, parent.name, CHILD_QUARANTINED, order + 1],
        )
    before = -1
    total = scalar(con, f"select count(*) from {_Q}")
    while total != before:
        before = total
        for child, col, parent, parent_col in edges:
            con.execute(
                f"insert into {_Q} select ?, ?, {record_key_sql(child)}, ?, ? "
                f"from {raw_table_name(child)} r "
                f"where r.{col} in (select p.{parent_col} from {raw_table_name(parent)} p "
                f"where {record_key_sql(parent, 'p')} in ({_quarantined_keys(parent)})) "
                f"and {record_key_sql(child)} not in ({_quarantined_keys(child)})",
                [child.system, child.name, PARENT_QUARANTINED, order],
            )
        for child, parent, key in wholes:
            con.execute(
                f"insert into {_Q} select ?, ?, {record_key_sql(parent)}, ?, ? "
                f"from {raw_table_name(parent)} r "
                f"where r.{key} in (select c.{key} from {raw_table_name(child)} c "
                f"where {record_key_sql(child, 'c')} in ({_quarantined_keys(child)})) "
                f"and {record_key_sql(parent)} not in ({_quarantined_keys(parent)})",
                [parent.system, parent.name, CHILD_QUARANTINED, order + 1],
            )
        total = scalar(con, f"select count(*) from {_Q}")


def _write_quarantine(
    con: duckdb.DuckDBPyConnection, run_id: str, descriptions: dict, at: datetime
) -> None:
    con.execute(_QUARANTINE_DDL)
    con.execute(
        "create or replace temp table _kam_rule_text "
        "(s varchar, t varchar, rule varchar, d varchar)"
    )
    con.executemany(
        "insert into _kam_rule_text values (?, ?, ?, ?)",
        [[s, t, rule, d] for (s, t, rule), d in descriptions.items()],
    )
    for table in TABLES:
        row = ", ".join(f"{c} := r.{c}" for c in table.column_names)
        con.execute(
            f"""
            insert into audit.quarantine
            with hits as (
                select record_key, rule, min(rule_order) as rule_order
                from {_Q} where system = ? and source_table = ?
                group by record_key, rule
            ),
            numbered as (
                select *, row_number() over (
                    partition by record_key order by rule_order, rule) as rn
                from hits
            ),
            ranked as (
                select record_key,
                    max(rule) filter (where rn = 1) as rule,
                    string_agg(rule, ',' order by rule_order, rule) filter (where rn > 1)
                        as other_rules
                from numbered group by record_key
            )
            select ?, ?, ?, ?, q.record_key, q.rule, d.d, q.other_rules,
                cast(to_json(struct_pack({row})) as varchar)
            from {raw_table_name(table)} r
            join ranked q on q.record_key = {record_key_sql(table)}
            left join _kam_rule_text d on d.s = ? and d.t = ? and d.rule = q.rule
            """,
            [
                table.system,
                table.name,
                run_id,
                at,
                table.system,
                table.name,
                table.system,
                table.name,
            ],
        )
    con.execute("drop table if exists _kam_rule_text")
    # rows the loader kept aside: unreadable values (rule null) and duplicate keys
    con.execute(
        "insert into audit.quarantine select ?, ?, x.system, x.table_name, x.record_key, "
        "coalesce(x.rule, ?), case when x.rule = ? then ? else ? end || ': ' || x.columns, "
        "null, x.row_json from raw_meta.rejected_rows x",
        [
            run_id,
            at,
            UNREADABLE_VALUE,
            DUPLICATE_KEY,
            DUPLICATE_DESCRIPTION,
            UNREADABLE_DESCRIPTION,
        ],
    )
    # rows removed from the raw layer because the source no longer has them
    con.execute(f"create or replace table audit.deleted_rows as select * from {DELETED_ROWS}")


def _write_views(con: duckdb.DuckDBPyConnection) -> None:
    for table in TABLES:
        con.execute(
            f"create or replace view {valid_table_name(table)} as "
            f"select r.* from {raw_table_name(table)} r where not exists ("
            f"select 1 from audit.quarantine q where q.system = '{table.system}' "
            f"and q.source_table = '{table.name}' and q.record_key = {record_key_sql(table)})"
        )


def _counts(con: duckdb.DuckDBPyConnection) -> list[RuleCount]:
    counts: list[RuleCount] = []
    for table in TABLES:
        rows = scalar(con, f"select count(*) from {raw_table_name(table)}")
        rows += scalar(con, f"select count(*) from {rejected_rows_of(table)}")
        per_rule = con.execute(
            "select rule, count(*), list(record_key order by record_key)[1:?] "
            "from audit.quarantine where system = ? and source_table = ? "
            "group by rule order by count(*) desc, rule",
            [SAMPLE_KEYS, table.system, table.name],
        ).fetchall()
        total = sum(int(n) for _, n, _ in per_rule)
        samples = [k for _, _, keys in per_rule for k in keys][:SAMPLE_KEYS]
        counts.append(RuleCount(table.system, table.name, ALL_RULES, total, rows, tuple(samples)))
        counts += [
            RuleCount(table.system, table.name, rule, int(n), rows, tuple(keys))
            for rule, n, keys in per_rule
        ]
    return counts


def apply_quarantine(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: date,
    *,
    today: date,
    rules: Sequence[RowRule] | None = None,
    deleted_retention_days: int = 0,
) -> QuarantineSummary:
    """Judge every raw row against the row rules; rebuild ``audit.quarantine``, append to
    ``audit.quarantine_runs`` and (re)create the ``valid_*`` views. One transaction.

    ``deleted_retention_days`` (> 0): rows deleted at the source more than that many days
    before ``today`` leave ``raw_meta.deleted_rows`` (and so ``audit.deleted_rows``);
    0 keeps them all."""
    started = time.perf_counter()
    rules = list(ROW_RULES if rules is None else rules)
    at = _now()
    ensure_raw_schema(con)
    ensure_audit(con)
    con.begin()
    try:
        if deleted_retention_days > 0:
            con.execute(
                f"delete from {DELETED_ROWS} where deleted_at < cast(? as timestamp) - "
                "to_days(cast(? as integer))",
                [today, deleted_retention_days],
            )
        con.execute(
            f"create or replace temp table {_Q} (system varchar, source_table varchar, "
            "record_key varchar, rule varchar, rule_order integer)"
        )
        _hit_rules(con, rules, today, as_of)
        _propagate(con, len(rules))
        _write_quarantine(con, run_id, _rule_descriptions(rules), at)
        _write_views(con)
        counts = _counts(con)
        con.execute("delete from audit.quarantine_runs where run_id = ?", [run_id])
        con.executemany(
            "insert into audit.quarantine_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    run_id,
                    as_of,
                    c.system,
                    c.table,
                    c.rule,
                    c.quarantined_rows,
                    c.table_rows,
                    c.share,
                    at,
                ]
                for c in counts
            ],
        )
        con.execute(f"drop table if exists {_Q}")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    summary = QuarantineSummary(run_id, as_of, counts, time.perf_counter() - started)
    for line in summary.log_lines():
        log.info(line)
    return summary
