{#- Today's prioritized to-do list per manager; one row per (manager, client, action_type).
    Priorities (1 = most urgent) and due dates are documented in kam_actions.yml. Actions that
    need the CRM (decision maker, complaints) are absent without it; key-client-at-risk and
    win-back actions stay, their reason saying the contact history is unknown. -#}
{%- set crm_enabled = 'true' if has_crm() else 'false' -%}
{#- The action log is built from this model (it refs kam_actions), so it is read here by name,
    not ref: at this point it holds the state of the previous run, which is what an action's
    age needs. Absent on a first build (and while dbt only parses): every action opens today. -#}
{%- set action_log = existing_relation('kam_action_log') -%}

with

key_clients as (

    select * from {{ ref('int_actions__key_clients') }}

),

churn_signals as (

    select * from {{ ref('client_churn_signals') }}

),

winback as (

    select * from {{ ref('winback_candidates') }}

),

managers as (

    select * from {{ ref('int_actions__managers') }}

),

interactions as (

    select * from {{ ref('stg_crm__interactions') }}

),

as_of as (

    select {{ as_of_date() }} as as_of_date

),

-- open rows of the log (and an expired one still listed on the log's last run: it stays
-- expired, so it keeps its age)
opened_before as (

    {% if action_log is not none %}
        select
            action_id,
            max(opened_on) as opened_on
        from {{ action_log }}
        where
            closed_on is null
            or (
                closed_how = 'expired'
                and last_listed_on = (select max(all_rows.last_listed_on) from {{ action_log }} as all_rows)
            )
        group by action_id
    {% else %}
        select
            cast(null as string) as action_id,
            cast(null as date) as opened_on
        where false
    {% endif %}

),

-- which complaint a manager has to resolve: the oldest one still open at D
oldest_open_complaint as (

    select
        client_id,
        complaint_id,
        complaint_channel,
        complaint_date
    from (
        select
            client_id,
            interaction_id as complaint_id,
            channel as complaint_channel,
            cast(occurred_at as date) as complaint_date,
            row_number() over (
                partition by client_id order by occurred_at asc, interaction_id asc
            ) as complaint_rank
        from interactions
        where
            {{ crm_enabled }}
            and kind = 'complaint'
            and cast(occurred_at as date) <= {{ as_of_date() }}
            and (resolved_at is null or cast(resolved_at as date) > {{ as_of_date() }})
    ) as open_complaints
    where complaint_rank = 1

),

-- a manager's own win-back list: "#1 of 3" counts within it, not company-wide
winback_ranked as (

    select
        winback.*,
        row_number() over (
            partition by winback.suggested_manager_id
            order by winback.priority asc, winback.client_id asc
        ) as manager_winback_rank,
        count(*) over (partition by winback.suggested_manager_id) as manager_winback_count,
        coalesce(
            lost_by.manager_name, 'manager ' || winback.lost_by_manager_id, 'nobody'
        ) as lost_by_text
    from winback
    left join managers as lost_by on winback.lost_by_manager_id = lost_by.manager_id
    where winback.suggested_manager_id is not null

),

clients as (

    select
        key_clients.*,
        coalesce(churn_signals.is_churned, false) as is_churned,
        coalesce(churn_signals.is_at_risk, false) as is_at_risk,
        coalesce(churn_signals.has_volume_drop, false) as has_volume_drop,
        churn_signals.decision_maker_left,
        churn_signals.open_complaints,
        churn_signals.days_since_last_contact,
        churn_signals.reasons
    from key_clients
    left join churn_signals on key_clients.client_id = churn_signals.client_id

),

decision_maker_left as (

    select
        account_manager_id as manager_id,
        client_id,
        client_name,
        'meet_new_decision_maker' as action_type,
        1 as priority,
        2 as due_in_days,
        net_revenue_365d as client_value,
        'A decision maker left the client in the last {{ var("dm_left_window_days", 90) }} days:'
        || ' meet the new one.' as reason
    from clients
    where {{ crm_enabled }} and coalesce(decision_maker_left, false) and not is_churned

),

key_client_at_risk as (

    select
        account_manager_id as manager_id,
        client_id,
        client_name,
        'call_key_client_at_risk' as action_type,
        2 as priority,
        3 as due_in_days,
        net_revenue_365d as client_value,
        'Key client ('
        || case key_reason
            when 'abc_a' then 'class A: top 80 % of revenue'
            when 'declared_tier' then 'declared key account'
            else key_reason
        end
        || ') at risk: '
        || coalesce(nullif(reasons, ''), 'overdue or volume drop')
        || case
            when not {{ crm_enabled }} then '; contact history unknown (no CRM)'
            when days_since_last_contact is null then '; never contacted'
            else '; last contact ' || days_since_last_contact || ' days ago'
        end
        || '. Call and find the reason.' as reason
    from clients
    where
        is_key_client
        and not is_churned
        and (is_at_risk or has_volume_drop)
        and (
            not {{ crm_enabled }}
            or days_since_last_contact is null
            or days_since_last_contact >= {{ var('contact_recent_days', 30) }}
        )

),

open_complaint as (

    select
        clients.account_manager_id as manager_id,
        clients.client_id,
        clients.client_name,
        'resolve_open_complaint' as action_type,
        3 as priority,
        5 as due_in_days,
        clients.net_revenue_365d as client_value,
        case
            when clients.open_complaints = 1 then 'Open complaint'
            else clients.open_complaints || ' open complaints, the oldest'
        end
        || coalesce(
            ' since ' || cast(complaint.complaint_date as string) || ' ('
            || {{ dbt.datediff('complaint.complaint_date', 'as_of.as_of_date', 'day') }} || ' days; by '
            || complaint.complaint_channel || ', ' || complaint.complaint_id || ')',
            ''
        )
        || case when clients.open_complaints = 1 then ': resolve it.' else ': resolve them.' end
            as reason
    from clients
    cross join as_of
    left join oldest_open_complaint as complaint on clients.client_id = complaint.client_id
    where {{ crm_enabled }} and clients.open_complaints > 0

),

winback_plan as (

    select
        suggested_manager_id as manager_id,
        client_id,
        client_name,
        'plan_winback' as action_type,
        4 as priority,
        14 as due_in_days,
        value_before_leaving as client_value,
        'Win-back candidate #' || manager_winback_rank || ' of your ' || manager_winback_count
        || ': value ' || {{ format_money('value_before_leaving') }}
        || ' (class ' || value_class_before_leaving || ') in the year before leaving; lost by '
        || lost_by_text || '; reasons: ' || churn_reasons
        || case when requires_revised_terms then '; revised payment terms required' else '' end
        || case when not {{ crm_enabled }} then '; contact history unknown (no CRM)' else '' end
        || '. Plan the win-back.' as reason
    from winback_ranked

),

actions as (

    select * from decision_maker_left
    union all
    select * from key_client_at_risk
    union all
    select * from open_complaint
    union all
    select * from winback_plan

),

final as (

    select
        md5(coalesce(actions.manager_id, '') || '|' || actions.client_id || '|' || actions.action_type)
            as action_id,
        as_of.as_of_date,
        actions.manager_id,
        managers.manager_name,
        actions.client_id,
        actions.client_name,
        actions.action_type,
        actions.priority,
        row_number() over (
            partition by actions.manager_id
            order by actions.priority asc, actions.client_value desc, actions.client_id asc
        ) as manager_rank,
        as_of.as_of_date + actions.due_in_days as due_date,
        actions.reason
    from actions
    cross join as_of
    left join managers on actions.manager_id = managers.manager_id

),

with_age as (

    select
        final.*,
        least(coalesce(opened_before.opened_on, final.as_of_date), final.as_of_date) as opened_on
    from final
    left join opened_before on final.action_id = opened_before.action_id

)

select
    cast(action_id as string) as action_id,
    cast(as_of_date as date) as as_of_date,
    cast(manager_id as string) as manager_id,
    cast(manager_name as string) as manager_name,
    cast(client_id as string) as client_id,
    cast(client_name as string) as client_name,
    cast(action_type as string) as action_type,
    cast(priority as integer) as priority,
    cast(manager_rank as bigint) as manager_rank,
    cast(due_date as date) as due_date,
    cast(reason as string) as reason,
    cast(opened_on as date) as opened_on,
    cast({{ dbt.datediff('opened_on', 'as_of_date', 'day') }} as integer) as age_days
from with_age
