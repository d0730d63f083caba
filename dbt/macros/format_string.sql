{#-
    printf-style formatting of one number: pattern '%.Nf' or '%+.Nf' (N one digit), e.g.
    format_string('%.1f', 'x') -> '2.5'. DuckDB: printf (C: the double's exact value, ties
    to even). Spark: format_string (java.util.Formatter rounds half up), after bround to N
    decimals (ties to even), so that 62.5 reads '62' on both.
-#}
{% macro format_string(pattern, expression) -%}
    {{ return(adapter.dispatch('format_string', 'kam')(pattern, expression)) }}
{%- endmacro %}

{% macro duckdb__format_string(pattern, expression) -%}
    printf('{{ pattern }}', {{ expression }})
{%- endmacro %}

{% macro default__format_string(pattern, expression) -%}
    format_string('{{ pattern }}', bround(cast({{ expression }} as double), {{ pattern[-2] | int }}))
{%- endmacro %}
