{#-
    Rows of one column `n` (bigint): every integer from `first` to `last`, both included; for
    a FROM clause: from ({{ integer_series(10, 200) }}) as grid.
    DuckDB: range(); Spark: explode(sequence()).
-#}
{% macro integer_series(first, last) -%}
    {{ return(adapter.dispatch('integer_series', 'kam')(first, last)) }}
{%- endmacro %}

{% macro duckdb__integer_series(first, last) -%}
    select range as n from range({{ first }}, {{ last }} + 1)
{%- endmacro %}

{% macro default__integer_series(first, last) -%}
    select explode(sequence(cast({{ first }} as bigint), cast({{ last }} as bigint))) as n
{%- endmacro %}
