{#-
    A bucket from 0 to 999,999 of `expression` (a string), the same on every run: a fixed
    sample keeps the rows whose bucket is below share x 1,000,000.
    DuckDB: hash() (an unsigned 64-bit hash). Others: pmod(hash()) (Spark's hash() is a
    signed 32-bit Murmur3, so its sample holds other rows than DuckDB's).
-#}
{% macro hash_bucket(expression) -%}
    {{ return(adapter.dispatch('hash_bucket', 'kam')(expression)) }}
{%- endmacro %}

{% macro duckdb__hash_bucket(expression) -%}
    hash({{ expression }}) % 1000000
{%- endmacro %}

{% macro default__hash_bucket(expression) -%}
    pmod(hash({{ expression }}), 1000000)
{%- endmacro %}
