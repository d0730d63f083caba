{{ config(materialized='view') }}

-- Today's lifecycle stage and status group per client with a completed order up to D
-- (docs/rules.md "Lifecycle"): D's rows of int_clients__lifecycle_days (the one
-- implementation of the lifecycle rules, on the churn score's flags at D). A view: it only
-- filters the family's rows, and client_lifecycle is its one reader.

with

lifecycle_days as (

    select * from {{ ref('int_clients__lifecycle_days') }}

),

final as (

    select
        client_id,
        as_of_date,
        lifecycle_stage,
        status_group,
        is_reactivated,
        is_new_client,
        is_growing,
        first_order_date,
        last_order_date,
        revenue_recent_period,
        revenue_prior_period

    from lifecycle_days

    where is_run_date

)

select * from final
