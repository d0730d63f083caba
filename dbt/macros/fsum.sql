{#-
    An order-independent sum of doubles, as a double: the same total whatever order the
    engine adds the rows in (plain sum() of doubles differs in the last bits between runs
    and engines). `over`: a window name or spec (e.g. 'client_window' or '(partition by ...)')
    for a window sum.
    DuckDB: fsum (compensated summation). Other engines (Spark): the exact sum of the
    amounts as decimal(38, 10), then a double; amounts finer than 1e-10 are rounded first.
-#}
{% macro fsum(expression, over=none) -%}
    {{ return(adapter.dispatch('fsum', 'kam')(expression, over)) }}
{%- endmacro %}

{% macro duckdb__fsum(expression, over) -%}
    fsum({{ expression }}){% if over %} over {{ over }}{% endif %}
{%- endmacro %}

{% macro default__fsum(expression, over) -%}
    cast(sum(cast({{ expression }} as decimal(38, 10))){% if over %} over {{ over }}{% endif %} as double)
{%- endmacro %}
