{#-
    Rules shared by the daily models (one as-of date) and the status history (many dates):
    written once here, so the two implementations cannot drift (docs/rules.md "Cadence and
    churn", "Lifecycle"; tests/dbt/test_dbt_history.py builds dates both ways and compares).
    The lifecycle macros read the columns of the CTE they are used in, unqualified.
-#}

{#- The expected interval: own history, else segment policy, else the segment norm, else
    the default (var default_interval_days). -#}
{% macro expected_interval(own, policy, norm) -%}
    coalesce({{ own }}, {{ policy }}, {{ norm }}, cast({{ var('default_interval_days') }} as double))
{%- endmacro %}

{#- Where the expected interval came from (policy also covers the project default). -#}
{% macro interval_source(own, policy, norm) -%}
    case
        when {{ own }} is not null then 'own_history'
        when {{ policy }} is not null then 'policy'
        when {{ norm }} is not null then 'segment_norm'
        else 'policy'
    end
{%- endmacro %}

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
