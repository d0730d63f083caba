{%- set crm = 'true' if has_crm() else 'false' -%}

with

clients as (

    select * from {{ ref('dim_clients') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

interactions as (

    select * from {{ ref('stg_crm__interactions') }}

),

decision_makers_left as (

    select
        client_id,
        max(left_at) as decision_maker_left_at

    from contacts

    where
        is_decision_maker
        and left_at between {{ as_of_date() }} - ({{ var('dm_left_window_days') }} - 1) and {{ as_of_date() }}

    group by client_id

),

interaction_stats as (

    select
        client_id,
        count(*) filter (
            where kind = 'complaint' and cast(occurred_at as date) >= {{ as_of_date() }} - 89
        ) as complaints_90d,
        count(*) filter (
            where kind = 'complaint' and (resolved_at is null or cast(resolved_at as date) > {{ as_of_date() }})
        ) as open_complaints,
        max(cast(occurred_at as date)) as last_contact_date

    from interactions

    where cast(occurred_at as date) <= {{ as_of_date() }}

    group by client_id

),

final as (

    select
        clients.client_id,
        case
            when {{ crm }} then decision_makers_left.decision_maker_left_at is not null
        end as decision_maker_left,
        case when {{ crm }} then decision_makers_left.decision_maker_left_at end as decision_maker_left_at,
        case when {{ crm }} then coalesce(interaction_stats.complaints_90d, 0) end as complaints_90d,
        case when {{ crm }} then coalesce(interaction_stats.open_complaints, 0) end as open_complaints,
        case when {{ crm }} then interaction_stats.last_contact_date end as last_contact_date,
        case
            when {{ crm }} then {{ dbt.datediff('interaction_stats.last_contact_date', as_of_date(), 'day') }}
        end as days_since_last_contact,
        case
            when {{ crm }}
                then coalesce(
                    {{ dbt.datediff('interaction_stats.last_contact_date', as_of_date(), 'day') }} >= {{ var('silence_days') }},
                    true
                )
        end as is_silent

    from clients
    left join decision_makers_left
        on clients.client_id = decision_makers_left.client_id
    left join interaction_stats
        on clients.client_id = interaction_stats.client_id

)

select * from final
