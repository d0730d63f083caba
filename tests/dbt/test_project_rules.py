"""Rules of the dbt project's layout, checked on its files (no dbt run).

* The run parameters are read in one place: only the macro ``as_of_date()`` reads
  ``var('as_of_date')``, only ``has_crm()`` reads (and parses) ``var('has_crm')``, only
  ``history_start_date()`` / ``rebuild_from_date()`` read ``history_days`` / ``rebuild_from``,
  and only ``run_parameter()`` reads the run parameters table (``run_parameters_table``).
  ``as_of_date`` has no default in dbt_project.yml: a run without it (and without the
  table) must fail; ``run_parameters_table`` has none either (the daily job passes it).
* Folders are in build order: a model refs only models of its own folder or of an earlier one.
* One YAML per model, beside it, named after it.
* Each client rule's setting is read by one macro, named after the rule, alone in a file of
  that name (e.g. ``has_volume_drop`` reads ``volume_drop_share``): the rule is written once
  and every model that applies it calls the macro.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt"
MODELS = DBT_DIR / "models"
MACROS = DBT_DIR / "macros"

#: the build order of the model folders (a model may ref its own folder or an earlier one)
BUILD_ORDER = (
    "staging",
    "core",
    "clients/intermediate",
    "clients/marts",
    "actions/intermediate",
    "actions/marts",
)
#: the macro that alone may read each run parameter
OWNERS = {
    "as_of_date": "as_of_date",
    "has_crm": "has_crm",
    "history_days": "history_start_date",
    "rebuild_from": "rebuild_from_date",
    "run_parameters_table": "run_parameter",
}

#: the setting of a client rule -> the one macro (and file) that applies it
RULE_OWNERS = {
    "volume_drop_share": "has_volume_drop",
    "volume_max_interval_days": "is_volume_cadence",
    "abc_a_threshold": "abc_class",
    "abc_b_threshold": "abc_class",
    "growth_share": "is_growing",
    "default_interval_days": "expected_interval",
}

MACRO_BLOCK = re.compile(r"{%-?\s*macro\s+(\w+)\s*\(.*?%}(.*?){%-?\s*endmacro\s*-?%}", re.DOTALL)
JINJA_COMMENT = re.compile(r"{#.*?#}", re.DOTALL)
REF = re.compile(r"""\bref\(\s*['"](\w+)['"]\s*\)""")


def _var_pattern(name: str) -> re.Pattern[str]:
    """var('name') / var("name"), with or without a default, any spacing."""
    return re.compile(rf"""\bvar\s*\(\s*['"]{name}['"]""")


def _sql_files() -> list[Path]:
    files = sorted(MODELS.rglob("*.sql")) + sorted(MACROS.rglob("*.sql"))
    assert files, f"no SQL files under {DBT_DIR}"
    return files


def _outside_owner(text: str, var: str) -> str:
    """The text without Jinja comments and without the owning macro's body."""
    owner = OWNERS[var]
    text = JINJA_COMMENT.sub("", text)
    return MACRO_BLOCK.sub(lambda m: "" if m.group(1) == owner else m.group(0), text)


@pytest.mark.parametrize("var", sorted(OWNERS))
def test_run_parameters_are_read_only_by_their_macro(var: str) -> None:
    pattern = _var_pattern(var)
    offenders = [
        str(path.relative_to(DBT_DIR))
        for path in _sql_files()
        if pattern.search(_outside_owner(path.read_text(), var))
    ]
    assert offenders == [], (
        f"var('{var}') is read outside the macro {OWNERS[var]}(): use {{{{ {OWNERS[var]}() }}}} "
        f"in {offenders}"
    )
    owners = [p for p in _sql_files() if pattern.search(JINJA_COMMENT.sub("", p.read_text()))]
    assert len(owners) == 1 and owners[0].parent == MACROS, owners


def test_has_crm_is_not_parsed_outside_its_macro() -> None:
    # the parsing itself (var | string | lower ... in ('true', '1', 'yes'))
    parsing = re.compile(r"\|\s*string\s*\|\s*lower")
    offenders = [
        str(path.relative_to(DBT_DIR))
        for path in _sql_files()
        if parsing.search(_outside_owner(path.read_text(), "has_crm"))
    ]
    assert offenders == []


def test_rule_test_catches_a_stray_var() -> None:
    """The patterns above do find the forms the rule forbids."""
    pattern = _var_pattern("as_of_date")
    for text in (
        "select cast('{{ var(\"as_of_date\") }}' as date)",
        "{%- set as_of = \"cast('\" ~ var('as_of_date') ~ \"' as date)\" -%}",
        "{{ var( 'as_of_date', '2026-09-30') }}",
    ):
        assert pattern.search(_outside_owner(text, "as_of_date")), text
    owned = "{% macro as_of_date() -%} {{ var('as_of_date', none) }} {%- endmacro %}"
    assert not pattern.search(_outside_owner(owned, "as_of_date"))
    assert not pattern.search(_outside_owner("{#- not var('as_of_date') -#}", "as_of_date"))


def test_as_of_date_has_no_default() -> None:
    project = yaml.safe_load((DBT_DIR / "dbt_project.yml").read_text())
    assert "as_of_date" not in (project.get("vars") or {})
    assert "run_parameters_table" not in (project.get("vars") or {})


def test_run_parameters_table_is_read_only_while_compiling() -> None:
    """The table is read with run_query only when execute is true: a read while dbt parses
    would fail on a fresh work DB and tie the parse to the database."""
    text = JINJA_COMMENT.sub("", (MACROS / "run_parameters.sql").read_text())
    body = next(m.group(2) for m in MACRO_BLOCK.finditer(text) if m.group(1) == "run_parameter")
    guard, query = body.find("not execute"), body.find("run_query")
    assert 0 <= guard < query, "run_parameter() must return before run_query while parsing"


def _folder(sql: Path) -> str:
    return sql.parent.relative_to(MODELS).as_posix()


def test_models_ref_only_their_folder_or_earlier_ones() -> None:
    models = {p.stem: p for p in MODELS.rglob("*.sql")}
    for path in models.values():
        assert _folder(path) in BUILD_ORDER, f"{path}: folder not in BUILD_ORDER"
    wrong = []
    for name, path in models.items():
        rank = BUILD_ORDER.index(_folder(path))
        for parent in REF.findall(path.read_text()):
            if parent in models and BUILD_ORDER.index(_folder(models[parent])) > rank:
                wrong.append(f"{name} ({_folder(path)}) refs {parent} ({_folder(models[parent])})")
    assert wrong == []


def test_one_yaml_per_model_beside_it() -> None:
    for sql in MODELS.rglob("*.sql"):
        yml = sql.with_suffix(".yml")
        assert yml.exists(), f"{sql.relative_to(DBT_DIR)} has no {yml.name}"
        doc = yaml.safe_load(yml.read_text())
        assert [m["name"] for m in doc.get("models", [])] == [sql.stem], yml
        tested = {u["model"] for u in doc.get("unit_tests", [])}
        assert tested <= {sql.stem}, f"{yml.name} holds unit tests of {tested - {sql.stem}}"


# -- what the seeded partial parse relies on (pipelines/dbt_partial_parse.py) ---------------

_CONFIG_CALL = re.compile(r"config\((?P<args>[^)]*)\)", re.S)
_IF_BLOCK = re.compile(r"{%-?\s*if\b(?P<body>.*?){%-?\s*endif", re.S)


def _parse_time_var_uses(text: str) -> list[str]:
    """Places where a var could change what dbt's parse records: inside a ``config()`` call,
    or a ``ref`` / ``source`` inside a Jinja ``if`` block."""
    found = [m.group(0)[:80] for m in _CONFIG_CALL.finditer(text) if "var(" in m["args"]]
    found += [
        m.group(0)[:80]
        for m in _IF_BLOCK.finditer(text)
        if re.search(r"\b(ref|source)\(", m["body"])
    ]
    return found


def test_vars_never_decide_what_the_parse_records() -> None:
    """A seeded partial parse is valid for other vars only because vars reach the models in
    SQL bodies alone (rendered when dbt compiles, never recorded by the parse)."""
    offending = {
        str(path.relative_to(DBT_DIR)): uses
        for path in sorted(MODELS.rglob("*.sql"))
        if (uses := _parse_time_var_uses(path.read_text()))
    }
    assert offending == {}


def test_parse_time_rule_catches_a_var_in_config_and_a_conditional_ref() -> None:
    assert _parse_time_var_uses("{{ config(materialized=var('m')) }} select 1")
    assert _parse_time_var_uses("{% if has_crm() %} select * from {{ ref('x') }} {% endif %}")
    assert not _parse_time_var_uses("{{ config(materialized='table') }} select {{ var('d') }}")


@pytest.mark.parametrize("var", sorted(RULE_OWNERS))
def test_each_rule_setting_is_read_by_the_one_macro_of_its_rule(var: str) -> None:
    pattern = _var_pattern(var)
    readers = [
        str(path.relative_to(DBT_DIR))
        for path in _sql_files()
        if pattern.search(JINJA_COMMENT.sub("", path.read_text()))
    ]
    owner = RULE_OWNERS[var]
    assert readers == [f"macros/{owner}.sql"], (
        f"var('{var}') must be read only by the macro {owner}() in macros/{owner}.sql "
        f"(call {{{{ {owner}(...) }}}} instead), found in {readers}"
    )
    macros = [m.group(1) for m in MACRO_BLOCK.finditer((MACROS / f"{owner}.sql").read_text())]
    assert macros == [owner]


#: where the cadence rule compares lateness with a factor: the overdue ratio with the churn /
#: at-risk factors, the gap before the last order with the churn factor x the interval
_LATENESS_COMPARISON = re.compile(r"\b(overdue_ratio|last_gap_days)\s*(}})?\s*(>=|<=|<|>)")


def test_churned_at_risk_and_reactivated_are_decided_only_by_their_macros() -> None:
    """Every churned / at-risk / reactivated comparison of the cadence rule is written once,
    in the macro named after it (the daily, history and backtest models call it)."""
    readers = sorted(
        str(path.relative_to(DBT_DIR))
        for path in _sql_files()
        if _LATENESS_COMPARISON.search(JINJA_COMMENT.sub("", path.read_text()))
    )
    assert readers == [
        "macros/is_at_risk.sql",
        "macros/is_churned.sql",
        "macros/is_reactivated.sql",
    ]


#: the revenue rules of the client-day family -> the one model that applies them on the dates
#: of the spine (the daily, history and backtest models read its rows). The churn reasons
#: apply the volume rule once more, on the windows ending on each churned client's last order
#: day (a date per client, not a date of the spine).
REVENUE_RULE_CALLERS = [
    "models/actions/intermediate/int_actions__churn_reasons.sql",
    "models/clients/intermediate/int_clients__revenue_windows.sql",
]
_REVENUE_RULE_CALL = re.compile(r"{{-?\s*(has_volume_drop|is_volume_judged|is_growing)\s*\(")


def test_volume_and_growth_are_applied_by_one_model() -> None:
    """Volume drop and growth are decided once per client day, in int_clients__revenue_windows:
    no other clients model calls their macros (they read its rows instead)."""
    callers = sorted(
        str(path.relative_to(DBT_DIR))
        for path in sorted(MODELS.rglob("*.sql"))
        if _REVENUE_RULE_CALL.search(JINJA_COMMENT.sub("", path.read_text()))
    )
    assert callers == REVENUE_RULE_CALLERS


#: the lifecycle rules -> the one model that applies them, on D and the history dates (the
#: daily and history models read its rows)
_LIFECYCLE_RULE_CALL = re.compile(
    r"{{-?\s*(is_new_client|is_reactivated|lifecycle_stage_rule|status_group_rule)\s*\("
)


def test_lifecycle_is_applied_by_one_model() -> None:
    """New, reactivated, lifecycle stage and status group are decided once per client day, in
    int_clients__lifecycle_days: no other model calls their macros."""
    callers = sorted(
        str(path.relative_to(DBT_DIR))
        for path in sorted(MODELS.rglob("*.sql"))
        if _LIFECYCLE_RULE_CALL.search(JINJA_COMMENT.sub("", path.read_text()))
    )
    assert callers == ["models/clients/intermediate/int_clients__lifecycle_days.sql"]
