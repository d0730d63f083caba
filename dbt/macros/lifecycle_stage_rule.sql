{#- Lifecycle stage, in precedence order, from is_churned, is_at_risk, has_volume_drop,
    is_new_client, is_growing. -#}
{% macro lifecycle_stage_rule() -%}
    case
        when is_churned then 'churn'
        when is_at_risk or coalesce(has_volume_drop, false) then 'decline'
        when is_new_client then 'acquisition'
        when is_growing then 'development'
        else 'maturity'
    end
{%- endmacro %}
