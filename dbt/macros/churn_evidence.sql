{#-
    The buckets that make past cases (int_clients__backtest_cases) and today's clients
    (int_clients__churn_probability) comparable (docs/rules.md "Churn from evidence").
    One definition, so a case and a client are bucketed alike. Labels are readable: they
    appear in marts and in reason texts.
-#}

{#- The overdue ratio's bucket: <0.5x, 0.5-1x, 1-1.5x, 1.5-2x, 2-3x, 3-5x, 5x+. -#}
{% macro overdue_ratio_bucket(ratio) -%}
    case
        when {{ ratio }} is null then null
        when {{ ratio }} < 0.5 then '<0.5x'
        when {{ ratio }} < 1 then '0.5-1x'
        when {{ ratio }} < 1.5 then '1-1.5x'
        when {{ ratio }} < 2 then '1.5-2x'
        when {{ ratio }} < 3 then '2-3x'
        when {{ ratio }} < 5 then '3-5x'
        else '5x+'
    end
{%- endmacro %}

{#- The number of distinct order days' bucket: 1, 2, 3, 4-5, 6-9, 10+ order days. -#}
{% macro order_days_bucket(order_days) -%}
    case
        when {{ order_days }} is null or {{ order_days }} < 1 then null
        when {{ order_days }} = 1 then '1 order day'
        when {{ order_days }} = 2 then '2 order days'
        when {{ order_days }} = 3 then '3 order days'
        when {{ order_days }} <= 5 then '4-5 order days'
        when {{ order_days }} <= 9 then '6-9 order days'
        else '10+ order days'
    end
{%- endmacro %}

{#-
    The order-days band segment_churn_definition judges the factors on: 1, 2-3, 4+ order
    days. Coarser than order_days_bucket: on Online Retail the bands above 3 order days lose
    3-22 % of their cases, so finer bands only thin the cases out.
-#}
{% macro order_days_band(order_days) -%}
    case
        when {{ order_days }} is null or {{ order_days }} < 1 then null
        when {{ order_days }} = 1 then '1 order day'
        when {{ order_days }} <= 3 then '2-3 order days'
        else '4+ order days'
    end
{%- endmacro %}

{#- The order-days bands, in order (one row each per segment in segment_churn_definition). -#}
{% macro order_days_bands() -%}
    {{ return(['1 order day', '2-3 order days', '4+ order days']) }}
{%- endmacro %}

{#-
    The horizon of a past case in days: backtest_horizon_intervals x its expected interval,
    at least backtest_horizon_min_days, at most backtest_horizon_max_days, rounded up to a
    whole day.
-#}
{% macro backtest_horizon_days(expected_interval_days) -%}
    cast(ceil(least(
        greatest(
            {{ var('backtest_horizon_intervals') }} * {{ expected_interval_days }},
            {{ var('backtest_horizon_min_days') }}
        ),
        {{ var('backtest_horizon_max_days') }}
    )) as integer)
{%- endmacro %}
