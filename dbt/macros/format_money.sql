{#-
    A money amount as text for reason strings: thousands separators and two decimals,
    e.g. 1069745.0 -> '1,069,745.00', -1234.567 -> '-1,234.57'. Null stays null.
    Rounded first (round_money: a half-cent tie reads the same cent on every engine, and as
    to_money publishes it; + 0.0 so that a tiny negative like -0.001 reads '0.00', not '-0.00').
    With var currency (KAM_CURRENCY, validated to a code or a sign) it follows the amount:
    '1,069,745.00 GBP'.
-#}
{% macro format_money(expression) -%}
    {{ format_thousands('cast(' ~ round_money('cast(' ~ expression ~ ' as double)', 2) ~ ' as double) + cast(0 as double)') }}
    {%- if var('currency') %} || ' {{ var("currency") }}'{% endif %}
{%- endmacro %}

{#-
    A ratio as text for reason strings that never contradicts a threshold comparison on
    the same value: truncated (floored) to two decimals, e.g. 2.98 -> '2.98', 2.999 ->
    '2.99' (never '3.0' while below a threshold of 3), 4.1333 -> '4.13'. The 1e-9 absorbs
    binary noise (0.58 * 100 = 57.99999999999999), so a ratio equal to a two-decimal
    threshold reads as that threshold.
-#}
{% macro format_ratio(expression) -%}
    {{ format_string('%.2f', 'floor(cast(' ~ expression ~ ' as double) * 100 + 1e-9) / 100') }}
{%- endmacro %}
