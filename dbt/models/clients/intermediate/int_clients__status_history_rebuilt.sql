-- The status of every client on every history date of the spine (is_history_date): the
-- history dates' rows of int_clients__lifecycle_days (the one implementation of the
-- lifecycle rules, on the cadence rule's flags of each date and the revenue rules of
-- int_clients__revenue_windows).

with

lifecycle_days as (

    select * from {{ ref('int_clients__lifecycle_days') }}

),

final as (

    select
        as_of_date,
        client_id,
        lifecycle_stage,
        status_group,
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

    from lifecycle_days

    where is_history_date

)

select * from final
