-- How the churn score was chosen and how well each candidate did (docs/rules.md "Churn
-- score"): one row per candidate and validation window, from int_clients__churn_model.

with

churn_model as (

    select * from {{ ref('int_clients__churn_model') }}

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        cast(candidate as string) as candidate,
        cast(validation_window as string) as validation_window,
        cast(cases as bigint) as cases,
        cast(lost as bigint) as lost,
        cast(base_rate as double) as base_rate,
        cast(auc as double) as auc,
        cast(mean_auc as double) as mean_auc,
        cast(flag_share as double) as flag_share,
        cast(precision_at_flag_share as double) as precision_at_flag_share,
        cast(recall_at_flag_share as double) as recall_at_flag_share,
        cast(calibration_error as double) as calibration_error,
        cast(is_chosen as boolean) as is_chosen,
        cast(why as string) as why,
        cast(horizon_days as integer) as horizon_days,
        cast(horizon_source as string) as horizon_source,
        cast(score_version as string) as score_version,
        cast(churned_level as double) as churned_level,
        cast(churned_precision as double) as churned_precision,
        cast(at_risk_level as double) as at_risk_level,
        cast(at_risk_precision as double) as at_risk_precision,
        cast(recency_weight as double) as recency_weight,
        cast(fitted_recency_weight as double) as fitted_recency_weight,
        cast(lost_share_drift as boolean) as lost_share_drift,
        cast(notes as string) as notes

    from churn_model

    where row_kind = 'report'

)

select * from final
