with

clients as (

    select * from {{ ref('dim_clients') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

segment_policies as (

    select * from {{ ref('int_clients__segment_policies') }}

),

distinct_order_days as (

    select distinct
        client_id,
        order_date as order_day

    from orders

    where
        status = 'completed'
        and order_date <= {{ as_of_date() }}

),

order_days as (

    select
        client_id,
        order_day,
        lag(order_day) over (partition by client_id order by order_day) as previous_order_day,
        {{ dbt.datediff('(lag(order_day) over (partition by client_id order by order_day))', 'order_day', 'day') }} as gap_days,
        row_number() over (partition by client_id order by order_day desc) as recency_rank

    from distinct_order_days

),

client_history as (

    select
        client_id,
        count(*) as distinct_order_days,
        min(order_day) as first_order_date,
        max(order_day) as last_order_date,
        median(gap_days) as median_gap_days

    from order_days

    group by client_id

),

latest_order_day as (

    select
        client_id,
        previous_order_day,
        gap_days as last_gap_days

    from order_days

    where recency_rank = 1

),

own_intervals as (

    select
        clients.client_id,
        clients.segment,
        client_history.first_order_date,
        client_history.last_order_date,
        latest_order_day.previous_order_day,
        latest_order_day.last_gap_days,
        coalesce(client_history.distinct_order_days, 0) as distinct_order_days,
        cast(client_history.median_gap_days as double) as median_gap_days,
        case
            when client_history.distinct_order_days >= {{ var('cadence_min_orders') }}
                then cast(client_history.median_gap_days as double)
        end as own_interval_days

    from clients
    left join client_history
        on clients.client_id = client_history.client_id
    left join latest_order_day
        on clients.client_id = latest_order_day.client_id

),

segment_norms as (

    select
        segment,
        -- every client with at least one gap counts here, so that segments of rare
        -- buyers (yearly) learn their norm from clients with 2-3 orders too
        cast(median(median_gap_days) as double) as learned_norm_days

    from own_intervals

    where median_gap_days is not null

    group by segment

),

expected as (

    select
        own_intervals.*,
        segment_norms.learned_norm_days,
        segment_policies.policy_interval_days,
        {{ expected_interval('own_intervals.own_interval_days', 'segment_policies.policy_interval_days', 'segment_norms.learned_norm_days') }} as expected_interval_days,
        {{ interval_source('own_intervals.own_interval_days', 'segment_policies.policy_interval_days', 'segment_norms.learned_norm_days') }} as interval_source,
        coalesce(
            segment_policies.at_risk_ratio, cast({{ var('at_risk_ratio') }} as double)
        ) as at_risk_ratio,
        coalesce(
            segment_policies.churn_ratio, cast({{ var('churn_ratio') }} as double)
        ) as churn_ratio

    from own_intervals
    left join segment_norms
        on own_intervals.segment = segment_norms.segment
    left join segment_policies
        on own_intervals.segment = segment_policies.segment

),

overdue as (

    select
        *,
        {{ dbt.datediff('last_order_date', as_of_date(), 'day') }} as days_since_last_order,
        {{ dbt.datediff('last_order_date', as_of_date(), 'day') }} / expected_interval_days as overdue_ratio

    from expected

),

final as (

    select
        client_id,
        segment,
        first_order_date,
        last_order_date,
        previous_order_day,
        last_gap_days,
        distinct_order_days,
        own_interval_days,
        learned_norm_days,
        policy_interval_days,
        expected_interval_days,
        interval_source,
        at_risk_ratio,
        churn_ratio,
        days_since_last_order,
        overdue_ratio,
        {{ is_churned('overdue_ratio', 'churn_ratio') }} as is_churned,
        {{ is_at_risk('overdue_ratio', 'at_risk_ratio', 'churn_ratio') }} as is_at_risk

    from overdue

)

select * from final
