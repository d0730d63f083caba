{#-
    Whether a client's volume is judged (see has_volume_drop): a positive 90-day baseline
    and, when its expected interval is given, a client who orders often enough
    (is_volume_cadence).
-#}
{% macro is_volume_judged(baseline_revenue_90d, expected_interval_days=none) -%}
    {%- if expected_interval_days is not none -%}
        ({{ is_volume_cadence(expected_interval_days) }} and {{ baseline_revenue_90d }} > 0)
    {%- else -%}
        ({{ baseline_revenue_90d }} > 0)
    {%- endif -%}
{%- endmacro %}
