{{
    config(
        materialized='incremental',
        unique_key='as_of_date',
        incremental_strategy=('delete+insert' if target.type == 'duckdb' else 'insert_overwrite'),
        partition_by=(none if target.type == 'duckdb' else ['as_of_date']),
        on_schema_change='append_new_columns'
    )
}}

-- The status of every client day the run writes: the history dates' and D's rows of
-- int_clients__lifecycle_days (the one implementation of the client-day rules), read the
-- same way for both. On D the flags are the churn score's, on a history date the cadence
-- rule's (int_clients__lifecycle_days decides; docs/rules.md "Status history"). What only D
-- has comes from client_churn_signals: the risk score and level (CRM signals, which have no
-- history) and the churn probability (fitted for D only); null on the history dates.

with

lifecycle_days as (

    select * from {{ ref('int_clients__lifecycle_days') }}

    where is_history_date or is_run_date

),

churn_signals as (

    select * from {{ ref('client_churn_signals') }}

),

joined as (

    select
        lifecycle_days.as_of_date,
        lifecycle_days.client_id,
        lifecycle_days.lifecycle_stage,
        lifecycle_days.status_group,
        lifecycle_days.is_at_risk,
        lifecycle_days.is_churned,
        lifecycle_days.has_volume_drop,
        lifecycle_days.abc_class,
        churn_signals.risk_level,
        lifecycle_days.days_since_last_order,
        lifecycle_days.expected_interval_days,
        lifecycle_days.overdue_ratio,
        case when lifecycle_days.is_run_date then 'daily_run' else 'reconstructed' end as history_source,
        churn_signals.risk_score,
        churn_signals.churn_probability

    from lifecycle_days
    left join churn_signals
        on
            lifecycle_days.is_run_date
            and lifecycle_days.client_id = churn_signals.client_id

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

    from joined

)

select * from final
