"""Weak point: re-runs of the same data were not identical to the cent (``25922.719999999998``
vs ``25922.72``): money was a DOUBLE summed in parallel, whose last bits depend on the
order DuckDB's threads add in.

Real `kam run`s of one date on the same PostgreSQL sources (120 clients x 2 years): the
session's reference run (DuckDB warehouse), a second run in a new data dir (DuckDB), a
run publishing to PostgreSQL and that run again. Every money value published (every
DECIMAL column, and every column named like an amount: revenue, margin, cost, discount,
value, stake, price) must be identical, compared exactly (no tolerance), column by column;
the DECIMAL ones hold cents (two decimals) on both warehouses.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from faults_support import AS_OF, KamRun, kam_env, pg_connect

#: a column named like an amount of money (ratios and shares of money are not money)
MONEY_NAME = re.compile(r"revenue|margin|cost|discount|value|stake|price|amount")
NOT_MONEY = re.compile(r"share|ratio|_pct$|probability")
Money = dict[str, list]  # "table.column" -> its values, sorted, compared exactly


def _is_money(column: str, data_type: str) -> bool:
    if data_type.upper().startswith(("DECIMAL", "NUMERIC")):
        return True
    numeric = data_type.upper() in {"DOUBLE", "DOUBLE PRECISION", "REAL", "FLOAT"}
    return numeric and bool(MONEY_NAME.search(column)) and not NOT_MONEY.search(column)


def _money_columns(rows: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    return [(table, column) for table, column, data_type in rows if _is_money(column, data_type)]


def _exact(values: list) -> list:
    """A column's values as exactly comparable values (Decimal as is, a double by its
    shortest exact repr), sorted: the same multiset or not, whatever the row order."""
    exact = [v if v is None or isinstance(v, Decimal) else repr(float(v)) for v in values]
    return sorted(exact, key=lambda v: (v is None, str(v)))


COLUMNS_SQL = (
    "select table_name, column_name, data_type from information_schema.columns "
    "where table_schema = 'marts' order by table_name, ordinal_position"
)


def duckdb_money(path: Path) -> Money:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            f"{table}.{column}": _exact(
                [r[0] for r in con.execute(f'select "{column}" from marts."{table}"').fetchall()]
            )
            for table, column in _money_columns(con.execute(COLUMNS_SQL).fetchall())
        }
    finally:
        con.close()


def pg_money(url: str) -> Money:
    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(COLUMNS_SQL)
            money = {}
            for table, column in _money_columns(cur.fetchall()):
                cur.execute(f'select "{column}" from marts."{table}"')
                money[f"{table}.{column}"] = _exact([r[0] for r in cur.fetchall()])
        return money
    finally:
        conn.close()


def _differences(a: Money, b: Money) -> list[str]:
    """Per money column that differs: how many values, and a few of each side's own."""
    problems = []
    for name in sorted(set(a) | set(b)):
        values_a, values_b = a.get(name), b.get(name)
        if values_a == values_b:
            continue
        if values_a is None or values_b is None:
            problems.append(
                f"marts.{name}: only in {'the second' if values_a is None else 'the first'}"
            )
            continue
        only_a = Counter(map(str, values_a)) - Counter(map(str, values_b))
        only_b = Counter(map(str, values_b)) - Counter(map(str, values_a))
        problems.append(
            f"marts.{name}: {len(values_a)} vs {len(values_b)} values, "
            f"{sum(only_a.values())} differ, e.g. {sorted(only_a)[:3]} vs {sorted(only_b)[:3]}"
        )
    return problems


def _cents(money: Money) -> list[str]:
    """DECIMAL money values with other than two decimals (probabilities and shares, also
    DECIMAL, have their own scale)."""
    odd = []
    for name, values in money.items():
        if name.endswith("probability") or "share" in name:
            continue
        odd += [
            f"marts.{name} = {v}"
            for v in values
            if isinstance(v, Decimal) and v.as_tuple().exponent != -2
        ]
    return odd[:5]


def _run(env: dict[str, str], label: str, log: Path) -> None:
    run = KamRun(env, as_of=AS_OF, label=label, log_path=log)
    rc = run.wait(timeout=1200)
    assert rc == 0, f"{label} failed (rc {rc}):\n{run.tail()}"


@pytest.mark.parametrize("target", ["duckdb", "postgres"])
def test_two_runs_of_the_same_data_publish_the_same_money(
    target: str, reference, pg_sources, pg_resources, fault_dbt_target: Path, tmp_path: Path
) -> None:
    expected = duckdb_money(reference.warehouse)
    assert {"fct_orders.net_revenue", "client_abc.net_revenue_365d"} <= set(expected), sorted(
        expected
    )
    assert _cents(expected) == []

    warehouse: str | Path
    if target == "duckdb":
        warehouse = tmp_path / "warehouse" / "kam.duckdb"
    else:
        warehouse = pg_resources.url(pg_resources.create_database("kam_faults_money"))
    env = kam_env(
        data_dir=tmp_path / "data",
        warehouse=warehouse,
        erp_url=pg_sources.erp_url,
        crm_url=pg_sources.crm_url,
        dagster_home=tmp_path / "dagster_home",
        dbt_target=fault_dbt_target,
    )
    _run(env, f"second run ({target})", tmp_path / "run.log")
    second = duckdb_money(Path(warehouse)) if target == "duckdb" else pg_money(str(warehouse))
    assert _cents(second) == []
    assert _differences(expected, second) == []

    if target == "postgres":  # the same date again, in the same data dir
        _run(env, "third run (postgres)", tmp_path / "run_again.log")
        assert _differences(second, pg_money(str(warehouse))) == []
