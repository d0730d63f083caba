{#-
    At risk by the cadence rule (docs/rules.md "Cadence and churn"): the overdue ratio at or
    above the at-risk factor and below the churn factor (a churned client is not at risk: the
    two are exclusive stages); false when the ratio is null. SQL expressions.
-#}
{% macro is_at_risk(overdue_ratio, at_risk_ratio, churn_ratio) -%}
    coalesce({{ overdue_ratio }} >= {{ at_risk_ratio }} and {{ overdue_ratio }} < {{ churn_ratio }}, false)
{%- endmacro %}
