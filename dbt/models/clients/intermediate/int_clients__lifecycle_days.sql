-- The lifecycle of every client day a run publishes (docs/rules.md "Lifecycle", "Status
-- history"): one row per history date and D (int_clients__as_of_dates) and client with a
-- completed order up to that date: is_new_client, is_reactivated, lifecycle_stage and
-- status_group by their macros on the date's flags. The one implementation of them:
-- marts.client_status_history reads D's and the history dates' rows the same way,
-- int_clients__lifecycle_today D's. The churned / at-risk flags are the cadence rule's
-- (int_clients__cadence_history) on a history date and the churn score's
-- (int_clients__churn_probability, fitted for D only) on D; volume drop, growth and ABC
-- class are the date's row of int_clients__revenue_windows.

with

cadence_history as (

    select * from {{ ref('int_clients__cadence_history') }}

    where is_history_date or is_run_date

),

revenue_windows as (

    select * from {{ ref('int_clients__revenue_windows') }}

    where is_history_date or is_run_date

),

-- the churned / at-risk flags of the churn score at D (docs/rules.md "Churn score")
churn_flags as (

    select * from {{ ref('int_clients__churn_probability') }}

),

flags as (

    select
        cadence_history.as_of_date,
        cadence_history.client_id,
        cadence_history.first_order_date,
        cadence_history.last_order_date,
        cadence_history.last_gap_days,
        cadence_history.churn_ratio,
        cadence_history.days_since_last_order,
        cadence_history.expected_interval_days,
        cadence_history.overdue_ratio,
        case
            when cadence_history.is_run_date then coalesce(churn_flags.is_churned, cadence_history.is_churned)
            else cadence_history.is_churned
        end as is_churned,
        case
            when cadence_history.is_run_date then coalesce(churn_flags.is_at_risk, cadence_history.is_at_risk)
            else cadence_history.is_at_risk
        end as is_at_risk,
        revenue_windows.has_volume_drop,
        coalesce(revenue_windows.revenue_recent_period, 0) as revenue_recent_period,
        coalesce(revenue_windows.revenue_prior_period, 0) as revenue_prior_period,
        coalesce(revenue_windows.is_growing, false) as is_growing,
        revenue_windows.abc_class,
        cadence_history.is_history_date,
        cadence_history.is_run_date

    from cadence_history
    left join revenue_windows
        on
            cadence_history.as_of_date = revenue_windows.as_of_date
            and cadence_history.client_id = revenue_windows.client_id
    left join churn_flags
        on
            cadence_history.is_run_date
            and cadence_history.client_id = churn_flags.client_id

),

judged as (

    select
        *,
        {{ is_new_client('first_order_date', 'as_of_date') }} as is_new_client,
        {{ is_reactivated(
            'is_churned',
            'last_order_date',
            'as_of_date',
            'last_gap_days',
            'churn_ratio',
            'expected_interval_days'
        ) }} as is_reactivated

    from flags

),

staged as (

    select
        *,
        {{ lifecycle_stage_rule() }} as lifecycle_stage

    from judged

),

final as (

    select
        as_of_date,
        client_id,
        lifecycle_stage,
        {{ status_group_rule() }} as status_group,
        is_at_risk,
        is_churned,
        has_volume_drop,
        is_reactivated,
        is_new_client,
        is_growing,
        abc_class,
        first_order_date,
        last_order_date,
        days_since_last_order,
        expected_interval_days,
        overdue_ratio,
        revenue_recent_period,
        revenue_prior_period,
        is_history_date,
        is_run_date

    from staged

)

select * from final
