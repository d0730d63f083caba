{#-
    An order-independent sum of doubles, as a double: the same total whatever order the
    engine adds the rows in (plain sum() of doubles differs in the last bits between runs
    and engines). `where`: a condition (the aggregate's FILTER clause); `over`: a window name
    or spec (e.g. 'client_window' or '(partition by ...)') for a window sum.
    DuckDB: fsum (compensated summation). Other engines (Spark): the exact sum of the
    amounts as decimal(38, 10), then a double; amounts finer than 1e-10 are rounded first.
-#}
{% macro fsum(expression, where=none, over=none) -%}
    {{ return(adapter.dispatch('fsum', 'kam')(expression, where, over)) }}
{%- endmacro %}

{% macro duckdb__fsum(expression, where, over) -%}
    fsum({{ expression }})
    {%- if where %} filter (where {{ where }}){% endif %}
    {%- if over %} over {{ over }}{% endif %}
{%- endmacro %}

{% macro default__fsum(expression, where, over) -%}
    cast(sum(cast({{ expression }} as decimal(38, 10)))
    {%- if where %} filter (where {{ where }}){% endif %}
    {%- if over %} over {{ over }}{% endif %} as double)
{%- endmacro %}
