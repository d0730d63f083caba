-- The churn score's settings as one row (docs/rules.md "Churn score"): the dbt Python model
-- int_clients__churn_model reads them from here, so every var stays in SQL (where the run
-- parameters macros render them) and a changed setting changes this row, not the parse.

{%- set horizon = var('churn_horizon_days') %}

with

final as (

    select
        {{ as_of_date() }} as as_of_date,
        cast({{ 'null' if horizon is none else horizon }} as integer) as horizon_days,
        cast({{ var('churn_score_margin') }} as double) as margin,
        cast({{ var('churn_score_windows') }} as integer) as windows,
        cast({{ var('churned_target_precision') }} as double) as churned_precision,
        cast({{ var('churned_min_overdue_ratio') }} as double) as churned_min_overdue_ratio,
        cast({{ var('at_risk_min_overdue_ratio') }} as double) as at_risk_min_overdue_ratio,
        cast({{ var('churn_score_min_cases') }} as integer) as min_cases,
        cast({{ var('churn_score_max_cases') }} as integer) as max_cases,
        cast({{ var('churn_score_seed') }} as integer) as seed

)

select * from final
