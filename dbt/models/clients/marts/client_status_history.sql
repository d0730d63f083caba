{{
    config(
        materialized='incremental',
        unique_key=['as_of_date', 'client_id'],
        incremental_strategy='delete+insert',
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

final as (

    select
        cast(lifecycle_today.as_of_date as date) as as_of_date,
        cast(lifecycle_today.client_id as varchar) as client_id,
        cast(lifecycle_today.lifecycle_stage as varchar) as lifecycle_stage,
        cast(lifecycle_today.status_group as varchar) as status_group,
        cast(churn_signals.is_at_risk as boolean) as is_at_risk,
        cast(churn_signals.is_churned as boolean) as is_churned,
        cast(churn_signals.has_volume_drop as boolean) as has_volume_drop,
        cast(abc.abc_class as varchar) as abc_class,
        cast(churn_signals.risk_level as varchar) as risk_level

    from lifecycle_today
    left join churn_signals
        on lifecycle_today.client_id = churn_signals.client_id
    left join abc
        on lifecycle_today.client_id = abc.client_id

)

select * from final
