{#-
    Sum of money amounts, compensated (fsum) and rounded to var('money_decimals').

    Sums of doubles leave noise where purchases and returns cancel out (0.1 + 0.2 - 0.3
    is 5.6e-17, not 0): without rounding, a client who returned everything would count
    as having "positive revenue" and be ranked, or give a baseline to compare against.
    Every money total that is compared with 0 or divided by goes through this macro.
-#}
{% macro money_sum(expression) -%}
    round({{ fsum(expression) }}, {{ var('money_decimals') }})
{%- endmacro %}
