{#- Status group from lifecycle_stage and is_reactivated. -#}
{% macro status_group_rule() -%}
    case
        when lifecycle_stage = 'churn' then 'lost'
        when is_reactivated then 'reactivated'
        when lifecycle_stage = 'decline' then 'at_risk'
        when lifecycle_stage = 'acquisition' then 'new'
        else 'active'
    end
{%- endmacro %}
