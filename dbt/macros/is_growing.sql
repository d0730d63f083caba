{#-
    Growing client (docs/rules.md "Lifecycle"): revenue of the last var growth_window_days
    days at least (1 + var growth_share) times that of the window before, which must be
    positive; false otherwise. SQL expressions.
-#}
{% macro is_growing(revenue_recent_period, revenue_prior_period) -%}
    coalesce(
        {{ revenue_prior_period }} > 0
        and {{ revenue_recent_period }}
        >= (1 + cast({{ var('growth_share') }} as double)) * {{ revenue_prior_period }},
        false
    )
{%- endmacro %}
