{#-
    A published money amount: DECIMAL(18, 2), rounded half away from zero to the cent.

    BI tools show a DOUBLE as 3267459.869999999 or 5.59541e+07; a DECIMAL(18, 2) reads
    3267459.87 everywhere, and the same data publishes the same value to the cent on DuckDB,
    PostgreSQL (numeric(18,2)) and Spark (round_money: a half-cent tie rounds alike on every
    engine). Used in the final select of the marts only: sums and ratios inside the models
    keep their own precision (money_sum).
-#}
{% macro to_money(expression) -%}
    cast({{ round_money(expression, 2) }} as decimal(18, 2))
{%- endmacro %}
