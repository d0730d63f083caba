{#-
    Rules shared by the daily models (one as-of date) and the status history (many dates):
    written once here, so the two implementations cannot drift (docs/rules.md "Cadence and
    churn", "Lifecycle"; tests/dbt/test_dbt_history.py builds dates both ways and compares).
    The lifecycle macros read the columns of the CTE they are used in, unqualified.
-#}

{#- The expected interval: own history, else segment policy, else the segment norm, else
    the default (var default_interval_days). -#}
{% macro expected_interval(own, policy, norm) -%}
    coalesce({{ own }}, {{ policy }}, {{ norm }}, cast({{ var('default_interval_days') }} as double))
{%- endmacro %}
