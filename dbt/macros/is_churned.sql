{#-
    Churned by the cadence rule (docs/rules.md "Cadence and churn"): the overdue ratio (days
    since the last completed order / expected interval) at or above the churn factor; false
    when the ratio is null (no completed order: not judged). SQL expressions.
-#}
{% macro is_churned(overdue_ratio, churn_ratio) -%}
    coalesce({{ overdue_ratio }} >= {{ churn_ratio }}, false)
{%- endmacro %}
