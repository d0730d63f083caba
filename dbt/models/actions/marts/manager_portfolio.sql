{#- One row per manager: portfolio size and value, risk, contact discipline on key
    clients and "comb" coverage (levels reached per key client). CRM-based columns are
    null without CRM. -#}
{%- set crm_enabled = 'true' if has_crm() else 'false' -%}

with

managers as (

    select * from {{ ref('int_actions__managers') }}

),

key_clients as (

    select * from {{ ref('int_actions__key_clients') }}

),

churn_signals as (

    select * from {{ ref('client_churn_signals') }}

),

comb as (

    select * from {{ ref('int_actions__comb_coverage') }}

),

action_log as (

    select * from {{ ref('kam_action_log') }}

),

as_of as (

    select {{ as_of_date() }} as as_of_date

),

-- the action log: actions open past their due date, and what closed actions led to
actions_per_manager as (

    select
        action_log.manager_id,
        count(*) filter (
            where action_log.closed_on is null and action_log.due_date < as_of.as_of_date
        ) as overdue_action_count,
        count(*) filter (where action_log.outcome = 'ordered') as actions_ordered,
        count(*) filter (where action_log.outcome is not null) as actions_judged
    from action_log
    cross join as_of
    where action_log.opened_on <= as_of.as_of_date
    group by action_log.manager_id

),

portfolio as (

    select
        key_clients.account_manager_id as manager_id,
        count(*) filter (where key_clients.is_key_client) as key_client_count,
        sum(key_clients.net_revenue_365d) as revenue_365d,
        sum(key_clients.margin_365d) as margin_365d,
        count(*) filter (where churn_signals.is_at_risk) as at_risk_count,
        count(*) filter (where churn_signals.is_churned) as churned_count,
        count(*) filter (
            where
            key_clients.is_key_client
            and churn_signals.days_since_last_contact < {{ var('contact_recent_days', 30) }}
        ) as key_clients_contacted_recent
    from key_clients
    left join churn_signals on key_clients.client_id = churn_signals.client_id
    where key_clients.account_manager_id is not null
    group by key_clients.account_manager_id

),

comb_per_manager as (

    select
        account_manager_id as manager_id,
        count(*) as key_clients,
        count(*) filter (where has_director_reached) as with_director,
        count(*) filter (where has_head_reached) as with_head,
        count(*) filter (where has_specialist_reached) as with_specialist,
        count(*) filter (where levels_covered = 3) as with_full_comb,
        avg(levels_covered) as avg_levels_covered
    from comb
    where account_manager_id is not null
    group by account_manager_id

),

final as (

    select
        managers.manager_id,
        managers.manager_name,
        managers.level,
        managers.team,
        managers.is_active,
        as_of.as_of_date,
        managers.client_count,
        managers.a_client_count,
        coalesce(portfolio.key_client_count, 0) as key_client_count,
        coalesce(portfolio.revenue_365d, 0) as revenue_365d,
        coalesce(portfolio.margin_365d, 0) as margin_365d,
        coalesce(portfolio.at_risk_count, 0) as at_risk_count,
        coalesce(portfolio.churned_count, 0) as churned_count,
        case
            when {{ crm_enabled }} then coalesce(portfolio.key_clients_contacted_recent, 0)
        end as key_clients_contacted_recent,
        case
            when {{ crm_enabled }}
                then coalesce(portfolio.key_clients_contacted_recent, 0) / nullif(portfolio.key_client_count, 0)
        end as key_clients_contacted_recent_share,
        case
            when {{ crm_enabled }} then comb_per_manager.with_director / nullif(comb_per_manager.key_clients, 0)
        end as comb_director_share,
        case
            when {{ crm_enabled }} then comb_per_manager.with_head / nullif(comb_per_manager.key_clients, 0)
        end as comb_head_share,
        case
            when {{ crm_enabled }} then comb_per_manager.with_specialist / nullif(comb_per_manager.key_clients, 0)
        end as comb_specialist_share,
        case
            when {{ crm_enabled }} then comb_per_manager.with_full_comb / nullif(comb_per_manager.key_clients, 0)
        end as comb_full_share,
        case when {{ crm_enabled }} then comb_per_manager.avg_levels_covered end as avg_levels_covered,
        coalesce(actions_per_manager.overdue_action_count, 0) as overdue_action_count,
        actions_per_manager.actions_ordered / nullif(actions_per_manager.actions_judged, 0)
            as action_order_share
    from managers
    cross join as_of
    left join portfolio on managers.manager_id = portfolio.manager_id
    left join comb_per_manager on managers.manager_id = comb_per_manager.manager_id
    left join actions_per_manager on managers.manager_id = actions_per_manager.manager_id

)

select
    cast(manager_id as string) as manager_id,
    cast(manager_name as string) as manager_name,
    cast(level as string) as level,
    cast(team as string) as team,
    cast(is_active as boolean) as is_active,
    cast(as_of_date as date) as as_of_date,
    cast(client_count as bigint) as client_count,
    cast(a_client_count as bigint) as a_client_count,
    cast(key_client_count as bigint) as key_client_count,
    {{ to_money('revenue_365d') }} as revenue_365d,
    {{ to_money('margin_365d') }} as margin_365d,
    cast(at_risk_count as bigint) as at_risk_count,
    cast(churned_count as bigint) as churned_count,
    cast(key_clients_contacted_recent as bigint) as key_clients_contacted_recent,
    cast(key_clients_contacted_recent_share as double) as key_clients_contacted_recent_share,
    cast(comb_director_share as double) as comb_director_share,
    cast(comb_head_share as double) as comb_head_share,
    cast(comb_specialist_share as double) as comb_specialist_share,
    cast(comb_full_share as double) as comb_full_share,
    cast(avg_levels_covered as double) as avg_levels_covered,
    cast(overdue_action_count as bigint) as overdue_action_count,
    cast(round(action_order_share, 4) as decimal(5, 4)) as action_order_share
from final
