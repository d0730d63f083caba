{#-
    A number as text with thousands separators and two decimals, e.g. 1069745.0 ->
    '1,069,745.00', -1234.57 -> '-1,234.57' (the caller rounds first: format_money).
    DuckDB: format('{:,.2f}'); Spark: format_number(x, 2).
-#}
{% macro format_thousands(expression) -%}
    {{ return(adapter.dispatch('format_thousands', 'kam')(expression)) }}
{%- endmacro %}

{% macro duckdb__format_thousands(expression) -%}
    format('{:,.2f}', {{ expression }})
{%- endmacro %}

{% macro default__format_thousands(expression) -%}
    format_number({{ expression }}, 2)
{%- endmacro %}
