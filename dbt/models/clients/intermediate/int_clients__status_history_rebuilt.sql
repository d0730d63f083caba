-- The status of every client on every history date of the spine (is_history_date): the
-- cadence rule's flags of int_clients__cadence_history, the revenue rules of
-- int_clients__revenue_windows (volume drop, growth, ABC class on revenue) and the
-- lifecycle rules of int_clients__lifecycle_today by their macros, each as of that date.

with

cadence_history as (

    select * from {{ ref('int_clients__cadence_history') }}

),

revenue_windows as (

    select * from {{ ref('int_clients__revenue_windows') }}

    where is_history_date

),

history_points as (

    select * from cadence_history

    where is_history_date

),

flags as (

    select
        history_points.as_of_date,
        history_points.client_id,
        history_points.first_order_date,
        history_points.last_order_date,
        history_points.days_since_last_order,
        history_points.expected_interval_days,
        history_points.overdue_ratio,
        history_points.is_churned,
        history_points.is_at_risk,
        revenue_windows.has_volume_drop,
        {{ is_new_client('history_points.first_order_date', 'history_points.as_of_date') }} as is_new_client,
        revenue_windows.is_growing,
        {{ is_reactivated(
            'history_points.is_churned',
            'history_points.last_order_date',
            'history_points.as_of_date',
            'history_points.last_gap_days',
            'history_points.churn_ratio',
            'history_points.expected_interval_days'
        ) }} as is_reactivated,
        revenue_windows.abc_class

    from history_points
    left join revenue_windows
        on
            history_points.as_of_date = revenue_windows.as_of_date
            and history_points.client_id = revenue_windows.client_id

),

staged as (

    select
        *,
        {{ lifecycle_stage_rule() }} as lifecycle_stage

    from flags

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
        overdue_ratio

    from staged

)

select * from final
