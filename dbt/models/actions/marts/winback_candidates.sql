{#- Churned clients worth winning back, with a suggested manager other than the one who
    lost them and the reasons they left (docs/rules.md "Win-back"). -#}

with

value_before_leaving as (

    select * from {{ ref('int_actions__value_before_leaving') }}

),

assignment as (

    select * from {{ ref('int_actions__winback_assignment') }}

),

churn_reasons as (

    select * from {{ ref('int_actions__churn_reasons') }}

),

clients as (

    select * from {{ ref('dim_clients') }}

),

as_of as (

    select {{ as_of_date() }} as as_of_date

),

candidates as (

    select
        value_before_leaving.client_id,
        clients.client_name,
        clients.segment,
        as_of.as_of_date,
        value_before_leaving.last_order_date,
        {{ dbt.datediff('value_before_leaving.last_order_date', 'as_of.as_of_date', 'day') }} as days_since_last_order,
        value_before_leaving.value_before_leaving,
        value_before_leaving.margin_before_leaving,
        value_before_leaving.value_class_before_leaving,
        assignment.lost_by_manager_id,
        assignment.lost_by_team,
        assignment.suggested_manager_id,
        assignment.suggested_manager_team,
        assignment.is_same_team_suggestion,
        coalesce(churn_reasons.requires_revised_terms, false) as requires_revised_terms,
        churn_reasons.reason_silence,
        churn_reasons.reason_complaints,
        churn_reasons.reason_payment,
        churn_reasons.reason_decision_maker_gone,
        churn_reasons.reason_volume_decline,
        coalesce(churn_reasons.churn_reasons, 'no reason visible in the data') as churn_reasons
    from value_before_leaving
    cross join as_of
    inner join clients on value_before_leaving.client_id = clients.client_id
    left join assignment on value_before_leaving.client_id = assignment.client_id
    left join churn_reasons on value_before_leaving.client_id = churn_reasons.client_id
    where value_before_leaving.is_winback_eligible

),

final as (

    select
        *,
        row_number() over (order by value_before_leaving desc, client_id asc) as priority
    from candidates

)

select
    cast(client_id as string) as client_id,
    cast(client_name as string) as client_name,
    cast(segment as string) as segment,
    cast(as_of_date as date) as as_of_date,
    cast(last_order_date as date) as last_order_date,
    cast(days_since_last_order as bigint) as days_since_last_order,
    {{ to_money('value_before_leaving') }} as value_before_leaving,
    {{ to_money('margin_before_leaving') }} as margin_before_leaving,
    cast(value_class_before_leaving as string) as value_class_before_leaving,
    cast(lost_by_manager_id as string) as lost_by_manager_id,
    cast(lost_by_team as string) as lost_by_team,
    cast(suggested_manager_id as string) as suggested_manager_id,
    cast(suggested_manager_team as string) as suggested_manager_team,
    cast(is_same_team_suggestion as boolean) as is_same_team_suggestion,
    cast(requires_revised_terms as boolean) as requires_revised_terms,
    cast(reason_silence as boolean) as reason_silence,
    cast(reason_complaints as boolean) as reason_complaints,
    cast(reason_payment as boolean) as reason_payment,
    cast(reason_decision_maker_gone as boolean) as reason_decision_maker_gone,
    cast(reason_volume_decline as boolean) as reason_volume_decline,
    cast(churn_reasons as string) as churn_reasons,
    cast(priority as bigint) as priority
from final
