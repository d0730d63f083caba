{#-
    A client's at-risk or churn factor (docs/rules.md "Cadence and churn"): its segment's
    (int_clients__segment_policies) where the segment has a row, else the project default,
    the var of the same name (a client without a segment). `factor`: 'at_risk_ratio' or
    'churn_ratio'; `segment_factor`: the segment's column (SQL expression).
-#}
{% macro segment_factor(factor, segment_factor) -%}
    coalesce({{ segment_factor }}, cast({{ var(factor) }} as double))
{%- endmacro %}
