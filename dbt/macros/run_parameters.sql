{#-
    The run parameters, read in one place. Models never call var('as_of_date') or parse
    var('has_crm') themselves (tests/dbt/test_project_rules.py checks it).

    Where they come from: a var given (--vars, or a unit test's overrides: vars:) wins;
    else, when var run_parameters_table names a table (the daily job passes
    'kam_run.run_parameters', written into the work DB right before dbt runs, see
    pipelines/run_params.py), its one row. The daily job's vars are then the same every day,
    so dbt's partial parsing is reused: changing --vars makes dbt re-parse every file.
    The table is read while a node compiles (execute is true, never while dbt parses), so
    the compiled SQL holds the same date literals as with vars.
-#}

{#-
    The value of a column of the run parameters table (text, or none) while compiling;
    none without var run_parameters_table or while dbt only parses.

    One lookup per dbt invocation, not one per macro call (as_of_date() alone is called
    42 times in 24 models): the row is kept in `graph`, the dict dbt builds once per
    invocation and hands to every node it compiles. Two threads compiling their first
    nodes at once may both look it up (at most one lookup per thread); the table does not
    change during an invocation, so they read the same row.
-#}
{% macro run_parameter(column) -%}
    {%- set relation = var('run_parameters_table', none) -%}
    {%- if relation is none or (relation | string | trim) == '' or not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set cache = graph.setdefault('kam_run_parameters', {}) -%}
    {%- set key = relation | string | trim -%}
    {%- if key not in cache -%}
        {%- set result = run_query('select * from ' ~ key) -%}
        {%- if (result.rows | length) != 1 -%}
            {{ exceptions.raise_compiler_error(
                "the run parameters table " ~ key ~ " (var run_parameters_table) must hold "
                ~ "exactly one row, it holds " ~ (result.rows | length)
            ) }}
        {%- endif -%}
        {%- set row = {} -%}
        {%- for name in result.column_names -%}
            {%- set value = result.rows[0][name] -%}
            {%- do row.update({name | lower: none if value is none else (value | string)}) -%}
        {%- endfor -%}
        {%- do cache.update({key: row}) -%}
    {%- endif -%}
    {%- if column not in cache[key] -%}
        {{ exceptions.raise_compiler_error(
            "the run parameters table " ~ key ~ " has no column " ~ column
        ) }}
    {%- endif -%}
    {{ return(cache[key][column]) }}
{%- endmacro %}

{#-
    The run's as-of date D (the partition date) as a SQL date expression:
    cast('YYYY-MM-DD' as date). var as_of_date has no default: every caller passes it
    (--vars '{as_of_date: YYYY-MM-DD}') or names the run parameters table. Without either
    the build fails with a message naming the var; while dbt only parses (execute is false:
    dbt parse, dagster-dbt project prepare-and-package) a missing var is fine.
-#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- set value = run_parameter('as_of_date') -%}
    {%- endif -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "var 'as_of_date' is required (the run's as-of date, YYYY-MM-DD) and has no default: "
                ~ "pass it, e.g. dbt build --vars '{as_of_date: 2026-09-30}', or name the run "
                ~ "parameters table: --vars '{run_parameters_table: kam_run.run_parameters}'"
            ) }}
        {%- endif -%}
        {%- set value = '1970-01-01' -%}
    {%- endif -%}
    cast('{{ value | string | trim }}' as date)
{%- endmacro %}

{#-
    Whether a CRM is configured (var has_crm, default true in dbt_project.yml), as a Jinja
    boolean. Always a var (also in the daily job, where it is the same every day): it decides
    the SQL's shape while dbt parses, before any table could be read. The var may arrive as
    a boolean or as text ('true' / 'false', '1', 'yes') from --vars. Without CRM the
    CRM-based signals are null (absent, not wrong).
-#}
{% macro has_crm() -%}
    {{ return((var('has_crm', true) | string | lower) in ('true', '1', 'yes')) }}
{%- endmacro %}

{#-
    The first date of the status history window, as a SQL date expression: D minus
    (var history_days - 1), i.e. KAM_HISTORY_DAYS days ending on D. The var (or the column
    of the run parameters table) comes from the settings (pipelines/settings.py, one default)
    with the other run parameters.
-#}
{% macro history_start_date() -%}
    {%- set days = var('history_days', none) -%}
    {%- if days is none -%}
        {%- set days = run_parameter('history_days') -%}
    {%- endif -%}
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
    rebuild_from or the table's column, YYYY-MM-DD), as a SQL date expression; without a
    backfill (unset or null) the day after D, so that nothing already built is rebuilt.
-#}
{% macro rebuild_from_date() -%}
    {%- set value = var('rebuild_from', none) -%}
    {%- if value is none -%}
        {%- set value = run_parameter('rebuild_from') -%}
    {%- endif -%}
    {%- if value is none or (value | string | trim) in ('', 'None', 'none', 'null') -%}
        ({{ as_of_date() }} + 1)
    {%- else -%}
        cast('{{ value | string | trim }}' as date)
    {%- endif -%}
{%- endmacro %}
