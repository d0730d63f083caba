"""Batch-level gates judged on the quarantine (blocking Dagster checks on the raw assets).

:func:`evaluate_gates`: ``quarantine_share`` (quarantined share of a table above the
maximum), ``not_empty`` (clients, orders, order_lines empty in the raw layer or in the
source), ``row_count_drop`` (the source's row count fell by more than the maximum share
since the last accepted run).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from pipelines.contract import TABLES
from pipelines.extract.raw_loader import ensure_source_counts
from pipelines.extract.raw_schema import ensure_raw_schema, raw_table_name, rejected_rows_of
from pipelines.gate.quarantine import ALL_RULES, SAMPLE_KEYS, ensure_audit, scalar

REQUIRED_TABLES = (("erp", "clients"), ("erp", "orders"), ("erp", "order_lines"))


@dataclass(frozen=True)
class GateResult:
    """The verdict of one gate on one table."""

    system: str
    table: str
    gate: str  # quarantine_share | not_empty | row_count_drop
    passed: bool
    message: str
    facts: dict = field(default_factory=dict)


def _quarantine_share_gates(
    con: duckdb.DuckDBPyConnection, run_id: str, max_share: float
) -> list[GateResult]:
    rows = con.execute(
        "select system, source_table, rule, quarantined_rows, table_rows, share "
        "from audit.quarantine_runs where run_id = ? order by system, source_table, rule",
        [run_id],
    ).fetchall()
    out = []
    for table in TABLES:
        mine = [r for r in rows if (r[0], r[1]) == (table.system, table.name)]
        total = next((r for r in mine if r[2] == ALL_RULES), None)
        if total is None:
            out.append(
                GateResult(
                    table.system,
                    table.name,
                    "quarantine_share",
                    False,
                    f"{table.system}.{table.name}: the quarantine was not applied in run {run_id}",
                )
            )
            continue
        _, _, _, quarantined, table_rows, share = total
        by_rule = {r[2]: int(r[3]) for r in mine if r[2] != ALL_RULES}
        passed = share <= max_share
        if quarantined == 0:
            message = f"{table.system}.{table.name}: no row quarantined of {table_rows}"
        else:
            details = []
            for rule, n in sorted(by_rule.items(), key=lambda kv: -kv[1]):
                keys = [
                    k
                    for (k,) in con.execute(
                        "select record_key from audit.quarantine where system = ? and "
                        "source_table = ? and rule = ? order by record_key limit ?",
                        [table.system, table.name, rule, SAMPLE_KEYS],
                    ).fetchall()
                ]
                details.append(f"rule {rule}: {n} rows, e.g. {', '.join(keys)}")
            verdict = "above" if not passed else "within"
            message = (
                f"{table.system}.{table.name}: {quarantined} of {table_rows} rows quarantined "
                f"({share:.2%}, {verdict} the maximum {max_share:.2%}); " + "; ".join(details)
            )
        out.append(
            GateResult(
                table.system,
                table.name,
                "quarantine_share",
                passed,
                message,
                {
                    "quarantined_rows": int(quarantined),
                    "table_rows": int(table_rows),
                    "share": float(share),
                    "max_share": max_share,
                    "by_rule": by_rule,
                },
            )
        )
    return out


def _source_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[tuple[str, str], int]:
    rows = con.execute(
        "select system, table_name, source_rows from raw_meta.source_counts where run_id = ?",
        [run_id],
    ).fetchall()
    return {(s, t): int(n) for s, t, n in rows}


def _not_empty_gates(con: duckdb.DuckDBPyConnection, run_id: str) -> list[GateResult]:
    counted = _source_rows(con, run_id)
    out = []
    for system, name in REQUIRED_TABLES:
        table = next(t for t in TABLES if (t.system, t.name) == (system, name))
        raw_rows = scalar(con, f"select count(*) from {raw_table_name(table)}")
        # like with like: the source counts every row it holds, the raw layer stores the
        # readable rows with a unique key and keeps the others aside (rejected_rows); rows
        # deleted at the source have left both (key reconciliation)
        aside = scalar(con, f"select count(*) from {rejected_rows_of(table)}")
        source_rows = counted.get((system, name))
        problems = []
        if raw_rows == 0:
            problems.append("the raw layer holds no row")
        if source_rows == 0:
            problems.append("the source returned no row")
        passed = not problems
        message = (
            f"{system}.{name}: {raw_rows + aside} rows in the raw layer ({raw_rows} stored, "
            f"{aside} kept aside as unreadable or duplicate), "
            f"{'?' if source_rows is None else source_rows} in the source"
            if passed
            else f"{system}.{name} is empty where rows are expected: " + " and ".join(problems)
        )
        out.append(
            GateResult(
                system,
                name,
                "not_empty",
                passed,
                message,
                {"raw_rows": raw_rows, "kept_aside_rows": aside, "source_rows": source_rows},
            )
        )
    return out


def _row_count_gates(
    con: duckdb.DuckDBPyConnection, run_id: str, max_drop: float
) -> list[GateResult]:
    counted = _source_rows(con, run_id)
    out = []
    for table in TABLES:
        key = (table.system, table.name)
        current = counted.get(key)
        name = f"{table.system}.{table.name}"
        if current is None:
            out.append(
                GateResult(*key, "row_count_drop", True, f"{name}: not counted (not configured)")
            )
            continue
        previous = con.execute(
            "select run_id, source_rows from raw_meta.source_counts "
            "where system = ? and table_name = ? and run_id <> ? and accepted "
            "order by counted_at desc limit 1",
            [*key, run_id],
        ).fetchall()
        facts: dict = {"source_rows": current, "max_drop_share": max_drop}
        if not previous:
            passed, message = True, f"{name}: {current} source rows (no earlier accepted count)"
        else:
            prev_run, prev_rows = previous[0]
            facts |= {"previous_rows": int(prev_rows), "previous_run_id": prev_run}
            drop = (prev_rows - current) / prev_rows if prev_rows else 0.0
            facts["drop_share"] = drop
            passed = drop <= max_drop
            change = f"{prev_rows} -> {current} rows ({-drop:+.1%}) since run {prev_run}"
            message = (
                f"{name}: source row count {change}"
                if passed
                else f"{name}: source row count fell by more than {max_drop:.0%}: {change}"
            )
        con.execute(
            "update raw_meta.source_counts set accepted = ? "
            "where run_id = ? and system = ? and table_name = ?",
            [passed, run_id, *key],
        )
        out.append(GateResult(*key, "row_count_drop", passed, message, facts))
    return out


def evaluate_gates(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    quarantine_max_share: float,
    row_drop_max_share: float,
) -> list[GateResult]:
    """Judge every gate of ``run_id`` (after its extraction and quarantine). Records
    whether each source count is accepted as the reference of later runs."""
    ensure_raw_schema(con)
    ensure_audit(con)
    ensure_source_counts(con)
    return (
        _quarantine_share_gates(con, run_id, quarantine_max_share)
        + _not_empty_gates(con, run_id)
        + _row_count_gates(con, run_id, row_drop_max_share)
    )
