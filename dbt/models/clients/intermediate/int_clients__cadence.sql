-- The cadence rule of every client at D (docs/rules.md "Cadence and churn"): D's rows of
-- int_clients__cadence_history (the one implementation of order days, intervals, lateness,
-- factors and the churned / at-risk flags) for the clients that ordered; a client without
-- a completed order is not judged (no lateness, flags false) and gets the expected
-- interval of its segment (policy, else D's segment norm, else default_interval_days).

with

clients as (

    select * from {{ ref('dim_clients') }}

),

cadence_history as (

    select * from {{ ref('int_clients__cadence_history') }}

),

segment_policies as (

    select * from {{ ref('int_clients__segment_policies') }}

),

run_date_rows as (

    select * from cadence_history

    where is_run_date

),

segment_norms as (

    select distinct
        segment,
        learned_norm_days

    from run_date_rows

),

joined as (

    select
        clients.client_id,
        clients.segment,
        run_date_rows.first_order_date,
        run_date_rows.last_order_date,
        run_date_rows.previous_order_day,
        run_date_rows.last_gap_days,
        coalesce(run_date_rows.distinct_order_days, 0) as distinct_order_days,
        run_date_rows.own_interval_days,
        segment_norms.learned_norm_days,
        segment_policies.policy_interval_days,
        -- one expression for every client: a client without an order day has no own
        -- interval and so takes its segment's (policy, norm, default), as in cadence_history
        {{ expected_interval('run_date_rows.own_interval_days', 'segment_policies.policy_interval_days', 'segment_norms.learned_norm_days') }} as expected_interval_days,
        {{ interval_source('run_date_rows.own_interval_days', 'segment_policies.policy_interval_days', 'segment_norms.learned_norm_days') }} as interval_source,
        {{ segment_factor('at_risk_ratio', 'segment_policies.at_risk_ratio') }} as at_risk_ratio,
        {{ segment_factor('churn_ratio', 'segment_policies.churn_ratio') }} as churn_ratio,
        run_date_rows.days_since_last_order,
        run_date_rows.overdue_ratio,
        coalesce(run_date_rows.is_churned, false) as is_churned,
        coalesce(run_date_rows.is_at_risk, false) as is_at_risk

    from clients
    left join run_date_rows
        on clients.client_id = run_date_rows.client_id
    left join segment_norms
        on clients.segment = segment_norms.segment
    left join segment_policies
        on clients.segment = segment_policies.segment

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
        is_churned,
        is_at_risk

    from joined

)

select * from final
