-- The lifecycle stage and status group of every client with a completed order at D
-- (docs/rules.md "Lifecycle"): the churn score's flags, volume drop (int_clients__volume) and
-- growth (D's rows of int_clients__revenue_windows) through the lifecycle macros.

with

cadence as (

    select * from {{ ref('int_clients__cadence') }}

),

volume as (

    select * from {{ ref('int_clients__volume') }}

),

-- the churned / at-risk flags of the churn score (docs/rules.md "Churn score")
churn_flags as (

    select * from {{ ref('int_clients__churn_probability') }}

),

growth as (

    select * from {{ ref('int_clients__revenue_windows') }}

    where is_run_date

),

flags as (

    select
        cadence.client_id,
        cadence.first_order_date,
        cadence.last_order_date,
        coalesce(churn_flags.is_churned, cadence.is_churned) as is_churned,
        coalesce(churn_flags.is_at_risk, cadence.is_at_risk) as is_at_risk,
        volume.has_volume_drop,
        coalesce(growth.revenue_recent_period, 0) as revenue_recent_period,
        coalesce(growth.revenue_prior_period, 0) as revenue_prior_period,
        {{ is_new_client('cadence.first_order_date', as_of_date()) }} as is_new_client,
        coalesce(growth.is_growing, false) as is_growing,
        {{ is_reactivated(
            'coalesce(churn_flags.is_churned, cadence.is_churned)',
            'cadence.last_order_date',
            as_of_date(),
            'cadence.last_gap_days',
            'cadence.churn_ratio',
            'cadence.expected_interval_days'
        ) }} as is_reactivated

    from cadence
    left join churn_flags
        on cadence.client_id = churn_flags.client_id
    left join volume
        on cadence.client_id = volume.client_id
    left join growth
        on cadence.client_id = growth.client_id

    where cadence.distinct_order_days > 0

),

staged as (

    select
        *,
        {{ lifecycle_stage_rule() }} as lifecycle_stage

    from flags

),

final as (

    select
        client_id,
        {{ as_of_date() }} as as_of_date,
        lifecycle_stage,
        {{ status_group_rule() }} as status_group,
        is_reactivated,
        is_new_client,
        is_growing,
        first_order_date,
        last_order_date,
        revenue_recent_period,
        revenue_prior_period

    from staged

)

select * from final
