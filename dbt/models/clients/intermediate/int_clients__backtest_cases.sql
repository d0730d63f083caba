-- Past cases for the evidence on churn: one row per (backtest date, client) of
-- int_clients__cadence_history whose horizon has fully passed by D, with what the client
-- did next, and the cadence rule's flags of that date (int_clients__cadence_history).

with

cadence_history as (

    select * from {{ ref('int_clients__cadence_history') }}

),

backtest_rows as (

    select
        as_of_date,
        client_id,
        segment,
        first_order_date,
        last_order_date,
        distinct_order_days,
        expected_interval_days,
        interval_source,
        days_since_last_order,
        overdue_ratio,
        at_risk_ratio,
        churn_ratio,
        is_churned,
        is_at_risk,
        next_order_date,
        {{ backtest_horizon_days('expected_interval_days') }} as horizon_days

    from cadence_history

    where
        is_backtest_date
        and as_of_date < {{ as_of_date() }}

),

passed as (

    select
        *,
        as_of_date + horizon_days as horizon_end_date

    from backtest_rows

    -- no peeking: only cases whose whole horizon lies up to D
    where as_of_date + horizon_days <= {{ as_of_date() }}

),

final as (

    select
        as_of_date,
        client_id,
        segment,
        first_order_date,
        last_order_date,
        distinct_order_days,
        expected_interval_days,
        interval_source,
        days_since_last_order,
        overdue_ratio,
        {{ overdue_ratio_bucket('overdue_ratio') }} as overdue_ratio_bucket,
        {{ order_days_bucket('distinct_order_days') }} as order_days_bucket,
        at_risk_ratio,
        churn_ratio,
        is_churned,
        is_at_risk,
        horizon_days,
        horizon_end_date,
        next_order_date,
        (next_order_date is null or next_order_date > horizon_end_date) as did_not_order_again

    from passed

)

select * from final
