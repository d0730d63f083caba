{#-
    Volume drop (docs/rules.md "Volume"): the revenue of the last 90 days at most
    (1 - var volume_drop_share) times the 90-day baseline (a quarter of the 270 days before).
    Judged only for a client whose baseline is positive and, when its expected interval is
    given, who orders at least every var volume_max_interval_days days; null = not judged.
    The arguments are SQL expressions (columns of the caller's CTE).
-#}
{% macro has_volume_drop(revenue_last_90d, baseline_revenue_90d, expected_interval_days=none) -%}
    case
        when {{ is_volume_judged(baseline_revenue_90d, expected_interval_days) }}
            then
                {{ revenue_last_90d }}
                <= (1 - cast({{ var('volume_drop_share') }} as double)) * {{ baseline_revenue_90d }}
    end
{%- endmacro %}
