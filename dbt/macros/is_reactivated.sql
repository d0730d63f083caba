{#-
    Reactivated (docs/rules.md "Lifecycle"): not churned, the last completed order within var
    new_client_days days to the date judged, and the gap before it at least the churn factor
    times the expected interval (the client had been churned by the cadence rule before that
    order); false otherwise. is_churned is the date's churned flag (the score's on a daily
    run, the cadence rule's on a reconstructed day). SQL expressions.
-#}
{% macro is_reactivated(is_churned, last_order_date, as_of_date, last_gap_days, churn_ratio, expected_interval_days) -%}
    coalesce(
        not {{ is_churned }}
        and {{ last_order_date }} > {{ as_of_date }} - {{ var('new_client_days') }}
        and {{ last_gap_days }} >= {{ churn_ratio }} * {{ expected_interval_days }},
        false
    )
{%- endmacro %}
