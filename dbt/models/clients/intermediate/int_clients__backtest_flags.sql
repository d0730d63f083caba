{%- set crm = 'true' if has_crm() else 'false' -%}

-- The flags of each past case (int_clients__backtest_cases), judged as on its backtest
-- date: churned / at risk as the cadence rule judged it then (int_clients__cadence_history),
-- volume drop by the rule of int_clients__volume on the windows ending on that date,
-- decision maker left by the rule of int_clients__crm_signals (null without a CRM).

with

backtest_cases as (

    select * from {{ ref('int_clients__backtest_cases') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

-- volume windows of the cases it can be judged for (expected interval up to the setting)
volume_windows as (

    select
        backtest_cases.as_of_date,
        backtest_cases.client_id,
        {{ money_sum("case when orders.order_date >= backtest_cases.as_of_date - 89 then orders.net_revenue else 0 end") }}
            as revenue_last_90d,
        {{ money_sum("case when orders.order_date < backtest_cases.as_of_date - 89 then orders.net_revenue else 0 end") }}
            as revenue_prior_270d

    from backtest_cases
    inner join orders
        on
            backtest_cases.client_id = orders.client_id
            and orders.order_date between backtest_cases.as_of_date - 359 and backtest_cases.as_of_date

    where {{ is_volume_cadence('backtest_cases.expected_interval_days') }}

    group by backtest_cases.as_of_date, backtest_cases.client_id

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
        {{ has_volume_drop(
            'volume_windows.revenue_last_90d',
            '(volume_windows.revenue_prior_270d / 3.0)',
            'backtest_cases.expected_interval_days'
        ) }} as has_volume_drop,
        case when {{ crm }} then decision_makers_left.client_id is not null end as decision_maker_left

    from backtest_cases
    left join volume_windows
        on
            backtest_cases.as_of_date = volume_windows.as_of_date
            and backtest_cases.client_id = volume_windows.client_id
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
