{#-
    The run parameters, read in one place. Models never call var('as_of_date') or parse
    var('has_crm') themselves (tests/dbt/test_project_rules.py checks it).
-#}

{#-
    The run's as-of date D (the partition date) as a SQL date expression:
    cast('YYYY-MM-DD' as date). var as_of_date has no default: every caller passes it
    (--vars '{as_of_date: YYYY-MM-DD}'). Without it the build fails with a message naming
    the var; while dbt only parses (execute is false: dbt parse, dagster-dbt project
    prepare-and-package) a missing var is fine.
-#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "var 'as_of_date' is required (the run's as-of date, YYYY-MM-DD) and has no default: "
                ~ "pass it, e.g. dbt build --vars '{as_of_date: 2026-09-30}'"
            ) }}
        {%- endif -%}
        {%- set value = '1970-01-01' -%}
    {%- endif -%}
    cast('{{ value | string | trim }}' as date)
{%- endmacro %}

{#-
    Whether a CRM is configured (var has_crm, default true in dbt_project.yml), as a Jinja
    boolean. The var may arrive as a boolean or as text ('true' / 'false', '1', 'yes') from
    --vars. Without CRM the CRM-based signals are null (absent, not wrong).
-#}
{% macro has_crm() -%}
    {{ return((var('has_crm', true) | string | lower) in ('true', '1', 'yes')) }}
{%- endmacro %}
