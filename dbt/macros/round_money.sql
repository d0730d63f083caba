{#-
    A money amount rounded to `decimals` (default var('money_decimals')) half away from zero,
    as a DECIMAL, the same cent on every engine: the amount is taken as the decimal number a
    double prints as (3246.175, not the binary 3246.17499999999972...) and rounded as a
    decimal. A double's round() differs between engines on such half-cent ties (DuckDB
    rounds x * 100 in binary, Spark the printed decimal), and key_account_value's
    margin_per_interaction published 3246.17 on one and 3246.18 on the other.
    DuckDB: through its shortest text (cast(double as decimal(38, 10)) multiplies in binary
    and misses exact ties above ~1e8, e.g. 123456789.125 -> 123456789.1249999872).
    Spark: cast(double as decimal) already reads the double's text (Double.toString).
-#}
{% macro round_money(expression, decimals=none) -%}
    {{ return(adapter.dispatch('round_money', 'kam')(expression, decimals)) }}
{%- endmacro %}

{% macro duckdb__round_money(expression, decimals) -%}
    round(cast(cast({{ expression }} as string) as decimal(38, 10)), {{ decimals if decimals is not none else var('money_decimals') }})
{%- endmacro %}

{% macro default__round_money(expression, decimals) -%}
    round(cast({{ expression }} as decimal(38, 10)), {{ decimals if decimals is not none else var('money_decimals') }})
{%- endmacro %}
