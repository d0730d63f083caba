{#- One wide row per client for BI tools and the daily brief: who owns it, what it is worth,
    where it stands and what to do next, so the first question ("top at-risk key accounts per
    manager") needs no join. Probabilities are rounded to 4 decimals and money is
    DECIMAL(18, 2) (macro to_money): this is the mart people read. -#}

with

clients as (

    select * from {{ ref('dim_clients') }}

),

key_clients as (

    select * from {{ ref('int_actions__key_clients') }}

),

churn_signals as (

    select * from {{ ref('client_churn_signals') }}

),

lifecycle as (

    select * from {{ ref('client_lifecycle') }}

),

actions as (

    select * from {{ ref('kam_actions') }}

),

as_of as (

    select {{ as_of_date() }} as as_of_date

),

-- the most urgent open action per client (any manager): lowest priority, then earliest due,
-- then the manager's rank (the action id breaks any tie left, so the three columns always
-- come from one action)
ranked_actions as (

    select
        client_id,
        action_type,
        due_date,
        manager_id,
        count(*) over (partition by client_id) as open_action_count,
        row_number() over (
            partition by client_id
            order by priority asc, due_date asc, manager_rank asc, action_id asc
        ) as urgency_rank
    from actions

),

next_action as (

    select
        client_id,
        open_action_count,
        action_type as next_action_type,
        due_date as next_action_due_date,
        manager_id as next_action_manager_id
    from ranked_actions
    where urgency_rank = 1

),

final as (

    select
        clients.client_id,
        clients.client_name,
        as_of.as_of_date,
        clients.account_manager_id,
        clients.account_manager_name,
        clients.manager_team,
        clients.segment,
        clients.region,
        clients.declared_tier,
        key_clients.abc_class,
        coalesce(key_clients.is_key_client, false) as is_key_client,
        lifecycle.lifecycle_stage,
        lifecycle.status_group,
        coalesce(churn_signals.is_at_risk, false) as is_at_risk,
        coalesce(churn_signals.is_churned, false) as is_churned,
        churn_signals.has_volume_drop,
        churn_signals.decision_maker_left,
        churn_signals.has_poor_payment_discipline,
        churn_signals.is_silent,
        churn_signals.risk_score,
        churn_signals.risk_level,
        round(churn_signals.churn_probability, 4) as churn_probability,
        coalesce(key_clients.net_revenue_365d, 0) as net_revenue_365d,
        churn_signals.churn_probability * coalesce(key_clients.net_revenue_365d, 0) as revenue_at_stake,
        churn_signals.days_since_last_order,
        churn_signals.days_since_last_contact,
        churn_signals.reasons,
        coalesce(next_action.open_action_count, 0) as open_action_count,
        next_action.next_action_type,
        next_action.next_action_due_date,
        next_action.next_action_manager_id
    from clients
    cross join as_of
    left join key_clients on clients.client_id = key_clients.client_id
    left join churn_signals on clients.client_id = churn_signals.client_id
    left join lifecycle on clients.client_id = lifecycle.client_id
    left join next_action on clients.client_id = next_action.client_id

)

select
    cast(client_id as string) as client_id,
    cast(client_name as string) as client_name,
    cast(as_of_date as date) as as_of_date,
    cast(account_manager_id as string) as account_manager_id,
    cast(account_manager_name as string) as account_manager_name,
    cast(manager_team as string) as manager_team,
    cast(segment as string) as segment,
    cast(region as string) as region,
    cast(declared_tier as string) as declared_tier,
    cast(abc_class as string) as abc_class,
    cast(is_key_client as boolean) as is_key_client,
    cast(lifecycle_stage as string) as lifecycle_stage,
    cast(status_group as string) as status_group,
    cast(is_at_risk as boolean) as is_at_risk,
    cast(is_churned as boolean) as is_churned,
    cast(has_volume_drop as boolean) as has_volume_drop,
    cast(decision_maker_left as boolean) as decision_maker_left,
    cast(has_poor_payment_discipline as boolean) as has_poor_payment_discipline,
    cast(is_silent as boolean) as is_silent,
    cast(risk_score as integer) as risk_score,
    cast(risk_level as string) as risk_level,
    cast(churn_probability as decimal(5, 4)) as churn_probability,
    {{ to_money('net_revenue_365d') }} as net_revenue_365d,
    {{ to_money('revenue_at_stake') }} as revenue_at_stake,
    cast(days_since_last_order as bigint) as days_since_last_order,
    cast(days_since_last_contact as bigint) as days_since_last_contact,
    cast(reasons as string) as reasons,
    cast(open_action_count as bigint) as open_action_count,
    cast(next_action_type as string) as next_action_type,
    cast(next_action_due_date as date) as next_action_due_date,
    cast(next_action_manager_id as string) as next_action_manager_id
from final
