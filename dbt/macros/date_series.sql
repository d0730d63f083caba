{#-
    Rows of one column `day` (date): every day from `first_day` to `last_day` (date
    expressions), both included; for a FROM clause: from ({{ date_series(a, b) }}) as days.
    DuckDB: generate_series; Spark: explode(sequence()).
-#}
{% macro date_series(first_day, last_day) -%}
    {{ return(adapter.dispatch('date_series', 'kam')(first_day, last_day)) }}
{%- endmacro %}

{% macro duckdb__date_series(first_day, last_day) -%}
    select cast(generate_series as date) as day
    from generate_series(
        cast({{ first_day }} as timestamp), cast({{ last_day }} as timestamp), interval 1 day
    )
{%- endmacro %}

{% macro default__date_series(first_day, last_day) -%}
    select explode(sequence({{ first_day }}, {{ last_day }})) as day
{%- endmacro %}
