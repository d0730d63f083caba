with

lifecycle_today as (

    select * from {{ ref('int_clients__lifecycle_today') }}

),

status_history as (

    select * from {{ ref('client_status_history') }}

),

clm_strategy as (

    select * from {{ ref('clm_strategy') }}

),

-- History up to today (a backfill of an older date must not see later dates).
past_history as (

    select
        status_history.client_id,
        status_history.as_of_date,
        status_history.lifecycle_stage,
        lifecycle_today.lifecycle_stage as current_stage

    from status_history
    inner join lifecycle_today
        on status_history.client_id = lifecycle_today.client_id

    where status_history.as_of_date <= lifecycle_today.as_of_date

),

last_other_stage as (

    select
        client_id,
        max(as_of_date) as last_other_date

    from past_history

    where lifecycle_stage != current_stage

    group by client_id

),

runs as (

    select
        past_history.client_id,
        min(past_history.as_of_date) filter (
            where past_history.as_of_date > coalesce(last_other_stage.last_other_date, date '0001-01-01')
        ) as run_start,
        max(past_history.lifecycle_stage) filter (
            where past_history.as_of_date = last_other_stage.last_other_date
        ) as previous_stage

    from past_history
    left join last_other_stage
        on past_history.client_id = last_other_stage.client_id

    group by past_history.client_id

),

final as (

    select
        cast(lifecycle_today.client_id as string) as client_id,
        cast(lifecycle_today.as_of_date as date) as as_of_date,
        cast(lifecycle_today.lifecycle_stage as string) as lifecycle_stage,
        cast(lifecycle_today.status_group as string) as status_group,
        cast(lifecycle_today.is_reactivated as boolean) as is_reactivated,
        cast(coalesce(runs.run_start, lifecycle_today.as_of_date) as date) as stage_since,
        cast(runs.previous_stage as string) as previous_stage,
        cast(clm_strategy.goal as string) as goal,
        cast(clm_strategy.recommended_action as string) as recommended_action,
        cast(clm_strategy.due_in_days as integer) as action_due_in_days,
        cast(lifecycle_today.as_of_date + cast(clm_strategy.due_in_days as integer) as date) as action_due_date,
        cast(lifecycle_today.is_new_client as boolean) as is_new_client,
        cast(lifecycle_today.is_growing as boolean) as is_growing,
        cast(lifecycle_today.first_order_date as date) as first_order_date,
        cast(lifecycle_today.last_order_date as date) as last_order_date

    from lifecycle_today
    left join runs
        on lifecycle_today.client_id = runs.client_id
    left join clm_strategy
        on lifecycle_today.status_group = clm_strategy.status_group

)

select * from final
