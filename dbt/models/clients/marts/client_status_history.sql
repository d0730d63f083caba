{{
    config(
        materialized='incremental',
        unique_key='as_of_date',
        incremental_strategy=('delete+insert' if target.type == 'duckdb' else 'insert_overwrite'),
        partition_by=(none if target.type == 'duckdb' else ['as_of_date']),
        on_schema_change='append_new_columns'
    )
}}

with

lifecycle_today as (

    select * from {{ ref('int_clients__lifecycle_today') }}

),

churn_signals as (

    select * from {{ ref('client_churn_signals') }}

),

abc as (

    select * from {{ ref('client_abc') }}

),

rebuilt as (

    select * from {{ ref('int_clients__status_history_rebuilt') }}

),

daily_rows as (

    select
        lifecycle_today.as_of_date,
        lifecycle_today.client_id,
        lifecycle_today.lifecycle_stage,
        lifecycle_today.status_group,
        churn_signals.is_at_risk,
        churn_signals.is_churned,
        churn_signals.has_volume_drop,
        abc.abc_class,
        churn_signals.risk_level,
        churn_signals.days_since_last_order,
        churn_signals.expected_interval_days,
        churn_signals.overdue_ratio,
        'daily_run' as history_source,
        churn_signals.risk_score,
        churn_signals.churn_probability

    from lifecycle_today
    left join churn_signals
        on lifecycle_today.client_id = churn_signals.client_id
    left join abc
        on lifecycle_today.client_id = abc.client_id

),

-- the missing (or backfilled) dates of the window, rebuilt from the order history; the
-- CRM signals behind risk_level have no history, so it is null on these rows
reconstructed_rows as (

    select
        as_of_date,
        client_id,
        lifecycle_stage,
        status_group,
        is_at_risk,
        is_churned,
        has_volume_drop,
        abc_class,
        cast(null as string) as risk_level,
        days_since_last_order,
        expected_interval_days,
        overdue_ratio,
        'reconstructed' as history_source,
        -- the score needs CRM signals and the probability the cases learned at that date:
        -- neither has a history to rebuild from, so both are null here
        cast(null as integer) as risk_score,
        cast(null as double) as churn_probability

    from rebuilt

),

unioned as (

    select * from daily_rows
    union all
    select * from reconstructed_rows

),

final as (

    select
        cast(as_of_date as date) as as_of_date,
        cast(client_id as string) as client_id,
        cast(lifecycle_stage as string) as lifecycle_stage,
        cast(status_group as string) as status_group,
        cast(is_at_risk as boolean) as is_at_risk,
        cast(is_churned as boolean) as is_churned,
        cast(has_volume_drop as boolean) as has_volume_drop,
        cast(abc_class as string) as abc_class,
        cast(risk_level as string) as risk_level,
        cast(days_since_last_order as bigint) as days_since_last_order,
        cast(expected_interval_days as double) as expected_interval_days,
        cast(overdue_ratio as double) as overdue_ratio,
        cast(history_source as string) as history_source,
        cast(risk_score as integer) as risk_score,
        cast(round(churn_probability, 4) as decimal(5, 4)) as churn_probability

    from unioned

)

select * from final
