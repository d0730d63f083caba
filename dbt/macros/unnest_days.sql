{#-
    A select-list expression that turns its row into one row per day from `first_day` to
    `last_day` (date expressions, both included), the day as a date.
    DuckDB: unnest(generate_series()); Spark: explode(sequence()).
-#}
{% macro unnest_days(first_day, last_day) -%}
    {{ return(adapter.dispatch('unnest_days', 'kam')(first_day, last_day)) }}
{%- endmacro %}

{% macro duckdb__unnest_days(first_day, last_day) -%}
    cast(unnest(generate_series(
        cast({{ first_day }} as timestamp), cast({{ last_day }} as timestamp), interval 1 day
    )) as date)
{%- endmacro %}

{% macro default__unnest_days(first_day, last_day) -%}
    explode(sequence({{ first_day }}, {{ last_day }}))
{%- endmacro %}
