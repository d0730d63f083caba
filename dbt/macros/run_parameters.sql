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

{#-
    The first date of the status history window, as a SQL date expression: D minus
    (var history_days - 1), i.e. KAM_HISTORY_DAYS days ending on D. The var comes from the
    settings (pipelines/settings.py, one default) with the other run parameters.
-#}
{% macro history_start_date() -%}
    {%- set days = var('history_days', none) -%}
    {%- if days is none -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "var 'history_days' is required (KAM_HISTORY_DAYS, days of status history): "
                ~ "pass it with as_of_date, e.g. --vars '{as_of_date: 2026-09-30, history_days: 730}'"
            ) }}
        {%- endif -%}
        {%- set days = 730 -%}
    {%- endif -%}
    ({{ as_of_date() }} - {{ (days | int) - 1 }})
{%- endmacro %}

{#-
    The first date whose history rows a backfill rebuilds even when they exist (var
    rebuild_from, YYYY-MM-DD), as a SQL date expression; without a backfill (var unset or
    null) the day after D, so that nothing already built is rebuilt.
-#}
{% macro rebuild_from_date() -%}
    {%- set value = var('rebuild_from', none) -%}
    {%- if value is none or (value | string | trim) in ('', 'None', 'none', 'null') -%}
        ({{ as_of_date() }} + 1)
    {%- else -%}
        cast('{{ value | string | trim }}' as date)
    {%- endif -%}
{%- endmacro %}
