{#-
    The median of `expression` over a group (an aggregate), as a double.
    DuckDB: list_median(list(x)), the same median as median() but much faster grouped by
    many keys (20,000 clients x 730 dates: 6 s against 75 s and 3 GB). Others: median().
-#}
{% macro fast_median(expression) -%}
    {{ return(adapter.dispatch('fast_median', 'kam')(expression)) }}
{%- endmacro %}

{% macro duckdb__fast_median(expression) -%}
    cast(list_median(list({{ expression }})) as double)
{%- endmacro %}

{% macro default__fast_median(expression) -%}
    cast(median({{ expression }}) as double)
{%- endmacro %}
