{%- set crm = 'true' if has_crm() else 'false' -%}

-- The flags of each past case (int_clients__backtest_cases), judged as on its backtest
-- date: churned / at risk as the cadence rule judged it then (int_clients__cadence_history),
-- volume drop as int_clients__revenue_windows judged it on that date,
-- decision maker left by the rule of int_clients__crm_signals (null without a CRM).

with

backtest_cases as (

    select * from {{ ref('int_clients__backtest_cases') }}

),

revenue_windows as (

    select * from {{ ref('int_clients__revenue_windows') }}

    where is_backtest_date

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

decision_makers_left as (

    select
        backtest_cases.as_of_date,
        backtest_cases.client_id,
        count(*) as decision_makers_left

    from backtest_cases
    inner join contacts
        on
            backtest_cases.client_id = contacts.client_id
            and contacts.is_decision_maker
            and contacts.left_at between backtest_cases.as_of_date - ({{ var('dm_left_window_days') }} - 1)
            and backtest_cases.as_of_date

    group by backtest_cases.as_of_date, backtest_cases.client_id

),

flagged as (

    select
        backtest_cases.*,
        revenue_windows.has_volume_drop,
        case when {{ crm }} then decision_makers_left.client_id is not null end as decision_maker_left

    from backtest_cases
    left join revenue_windows
        on
            backtest_cases.as_of_date = revenue_windows.as_of_date
            and backtest_cases.client_id = revenue_windows.client_id
    left join decision_makers_left
        on
            backtest_cases.as_of_date = decision_makers_left.as_of_date
            and backtest_cases.client_id = decision_makers_left.client_id

),

final as (

    select
        as_of_date,
        client_id,
        segment,
        last_order_date,
        distinct_order_days,
        expected_interval_days,
        interval_source,
        days_since_last_order,
        overdue_ratio,
        horizon_days,
        horizon_end_date,
        next_order_date,
        did_not_order_again,
        at_risk_ratio,
        churn_ratio,
        is_churned,
        is_at_risk,
        has_volume_drop,
        decision_maker_left

    from flagged

)

select * from final
