"""The dbt project stays engine-portable (DuckDB and Spark; README "Running on Spark"): no
DuckDB-only construct in a model, a macro, a data test, a unit test's SQL or a contract,
except inside the DuckDB implementation of a dispatch macro (``duckdb__<name>`` in
dbt/macros/<name>.sql, beside its ``default__<name>``). Checked on the files (no dbt run):
the raw SQL with Jinja and comments taken out, so a macro call such as ``{{ fsum('x') }}``
is fine and a bare ``fsum(x)`` is not.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt"
MACROS = DBT_DIR / "macros"

#: DuckDB-only SQL -> what to use instead (a dispatch macro or the portable form)
DUCKDB_ONLY = {
    r"\bvarchar\b": "string (DuckDB and Spark both take it)",
    r"(?<![\w.])date_diff\s*\(|(?<![\w.])datediff\s*\(": "{{ dbt.datediff(a, b, 'day') }}",
    r"(?<![\w.])date_trunc\s*\(": "{{ dbt.date_trunc('month', x) }}",
    r"\bto_(days|months|years|weeks)\s*\(": "{{ dbt.dateadd('month', n, x) }}",
    r"\binterval\s+('|\d)": "{{ dbt.dateadd(...) }} or date +/- integer days",
    r"\bfsum\s*\(": "{{ fsum(x) }} / {{ money_sum(x) }}",
    r"\blist_\w+\s*\(|\blist\s*\(": "{{ fast_median(x) }} (or a dispatch macro)",
    r"\bmedian\s*\([^()]*\)\s*over\b": "{{ running_median(x, partition, order) }}",
    r"\bgenerate_series\b|\bunnest\s*\(|\brange\s*\(": (
        "{{ date_series(a, b) }} / {{ unnest_days(a, b) }} / {{ integer_series(a, b) }}"
    ),
    r"\basof\b": "{{ asof_left_join(...) }}",
    r"\bqualify\b": "a subquery with row_number() and a where",
    r"\*\s*(exclude|replace)\s*\(": "the columns by name",
    r"\barg_(min|max)\s*\(|\bepoch\w*\s*\(": "row_number() over (...) = 1",
    r"\bstrftime\s*\(|\bstrptime\s*\(": "cast(d as string) (YYYY-MM-DD on both)",
    r"\bprintf\s*\(|\bformat\s*\(": "{{ format_string('%.1f', x) }} / {{ format_money(x) }}",
    r"::\s*\w": "cast(x as type)",
    r"\bthen\s+-?\d+\.\d+\s+else\s+-?\d+\.\d+": (
        "cast(1 as double): Spark keeps 1.0 / 0.0 as decimals (avg() then a DECIMAL(6, 5))"
    ),
    r"\[[^\]]*\]": "no list literals",
    r"\b(struct_pack|hugeint|utinyint|ubigint|regexp_matches|string_split|string_agg)\b": (
        "a portable function or a dispatch macro"
    ),
}
PATTERNS = {re.compile(p, re.IGNORECASE): fix for p, fix in DUCKDB_ONLY.items()}

JINJA = re.compile(r"{#.*?#}|{%.*?%}|{{.*?}}", re.DOTALL)
SQL_COMMENT = re.compile(r"--[^\n]*")
MACRO_BLOCK = re.compile(r"{%-?\s*macro\s+(\w+)\s*\(.*?%}.*?{%-?\s*endmacro\s*-?%}", re.DOTALL)
STRING = re.compile(r"'(?:[^']|'')*'")


def _raw_sql(text: str) -> str:
    """The SQL without Jinja, comments and string literals."""
    return STRING.sub("''", SQL_COMMENT.sub("", JINJA.sub(" ", text)))


def _macro_bodies(text: str) -> str:
    """A macro file's Jinja templates, without the DuckDB implementations of dispatch macros
    (``duckdb__*``), with each macro body's own SQL kept for the scan."""
    text = re.sub(r"{#.*?#}", "", text, flags=re.DOTALL)
    return MACRO_BLOCK.sub(lambda m: "" if m.group(1).startswith("duckdb__") else m.group(0), text)


def offenders(sql: str) -> list[str]:
    """Each DuckDB-only construct found in raw SQL: 'matched text -> what to use'."""
    return [f"{m.group(0)!r} -> {fix}" for p, fix in PATTERNS.items() for m in p.finditer(sql)]


def _macro_sql(text: str) -> str:
    """The SQL inside a macro file's macros (other than duckdb__*), Jinja statements out."""
    kept = _macro_bodies(text)
    return _raw_sql(re.sub(r"{%-?\s*(end)?macro\b.*?%}", " ", kept, flags=re.DOTALL))


def _sql_sources() -> dict[str, str]:
    """Every place that holds SQL: models, data tests, macros, unit-test SQL fixtures."""
    sources = {}
    for path in sorted((DBT_DIR / "models").rglob("*.sql")) + sorted(
        (DBT_DIR / "tests").rglob("*.sql")
    ):
        sources[str(path.relative_to(DBT_DIR))] = _raw_sql(path.read_text())
    for path in sorted(MACROS.rglob("*.sql")):
        sources[str(path.relative_to(DBT_DIR))] = _macro_sql(path.read_text())
    for path in sorted((DBT_DIR / "models").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for test in doc.get("unit_tests", []):
            for part in [*test.get("given", []), test.get("expect", {})]:
                if part.get("format") == "sql":
                    sources[f"{path.relative_to(DBT_DIR)}:{test['name']}"] = _raw_sql(part["rows"])
    return sources


def test_no_duckdb_only_sql_outside_a_dispatch_macro() -> None:
    found = {where: hits for where, sql in _sql_sources().items() if (hits := offenders(sql))}
    assert found == {}, (
        "DuckDB-only SQL outside the duckdb__ implementation of a dispatch macro "
        "(README 'Running on Spark'): " + repr(found)
    )


def _declared_types() -> dict[str, str]:
    """Every data_type of a model contract and every seed column type."""
    types = {}
    for path in sorted((DBT_DIR / "models").rglob("*.yml")) + [DBT_DIR / "seeds" / "_seeds.yml"]:
        doc = yaml.safe_load(path.read_text()) or {}
        for node in doc.get("models", []) + doc.get("seeds", []):
            for column in node.get("columns", []) or []:
                if column.get("data_type"):
                    types[f"{path.name}:{node['name']}.{column['name']}"] = column["data_type"]
            column_types = (node.get("config") or {}).get("column_types") or {}
            for name, data_type in column_types.items():
                types[f"{path.name}:{node['name']}.{name}"] = data_type
    return types


def test_contract_and_seed_types_are_portable() -> None:
    types = _declared_types()
    assert types, "no contract or seed types found"
    portable = re.compile(
        r"^(string|boolean|date|timestamp|integer|bigint|double|decimal\(\d+, ?\d+\))$"
    )
    wrong = {k: v for k, v in types.items() if not portable.match(str(v).lower())}
    assert wrong == {}


def test_incremental_strategy_is_chosen_per_engine() -> None:
    """delete+insert exists on DuckDB only (dbt-spark refuses it at compile time)."""
    for path in sorted((DBT_DIR / "models").rglob("*.sql")):
        text = path.read_text()
        if "incremental_strategy" in text:
            assert re.search(r"incremental_strategy\s*=\s*\(?[^,]*\btarget\.type\b", text), path


@pytest.mark.parametrize(
    "sql",
    [
        "select cast(x as varchar) from t",
        "select date_diff('day', a, b) from t",
        "select datediff('day', a, b) from t",
        "select fsum(x) from t",
        "select list_median(list(x)) from t",
        "select median(x) over (partition by c order by d) from t",
        "select * from generate_series(0, 11)",
        "select unnest(xs) from t",
        "select * from a asof left join b on a.k = b.k and a.d >= b.d",
        "select * from t qualify row_number() over (order by x) = 1",
        "select * exclude (a) from t",
        "select arg_min(a, [p, epoch(d)]) from t",
        "select strftime(d, '%Y') from t",
        "select printf('%.1f', x) from t",
        "select x::integer from t",
        "select date_trunc('month', d) - to_months(1) from t",
        "select d + interval 1 day from t",
        "select avg(case when lost then 1.0 else 0.0 end) from t",
    ],
)
def test_the_rule_catches_duckdb_only_sql(sql: str) -> None:
    assert offenders(_raw_sql(sql)), sql


def test_the_rule_lets_portable_sql_and_macro_calls_pass() -> None:
    sql = (
        "select {{ fsum('x') }}, {{ dbt.datediff('a', 'b', 'day') }}, cast(x as string), "
        "median(x), percentile(x, 0.5), 'printf(' as s, d - 1, min(x) over w "
        "-- asof in a comment\n from t {{ asof_left_join('b', 'k', 'd', 'e', 'f') }}"
    )
    assert offenders(_raw_sql(sql)) == []
    macro = (
        "{% macro f(x) -%}{{ return(adapter.dispatch('f', 'kam')(x)) }}{%- endmacro %}\n"
        "{% macro duckdb__f(x) -%} fsum({{ x }}) {%- endmacro %}\n"
        "{% macro default__f(x) -%} sum({{ x }}) {%- endmacro %}"
    )
    assert offenders(_macro_sql(macro)) == []
    assert offenders(_macro_sql(macro.replace("default__f", "spark__f").replace("sum(", "fsum(")))
