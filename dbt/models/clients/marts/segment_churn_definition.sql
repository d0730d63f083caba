-- Where "churned" and "at risk" begin for each segment and order-days band, where that
-- comes from, and how right it was on the past cases (docs/rules.md "Churn from evidence").
-- One row per (segment, order-days band) of int_clients__churn_ratios.

with

churn_ratios as (

    select * from {{ ref('int_clients__churn_ratios') }}

),

backtest_flags as (

    select * from {{ ref('int_clients__backtest_flags') }}

),

evidence as (

    select
        segment,
        {{ order_days_band('distinct_order_days') }} as order_days_band,
        min(as_of_date) as first_backtest_date,
        max(as_of_date) as last_backtest_date,
        count(*) filter (where did_not_order_again) as lost_cases,
        count(*) filter (where is_churned) as churned_flagged,
        count(*) filter (where is_churned and did_not_order_again) as churned_hits,
        count(*) filter (where is_at_risk) as at_risk_flagged,
        count(*) filter (where is_at_risk and did_not_order_again) as at_risk_hits,
        median(horizon_days) as median_horizon_days

    from backtest_flags

    group by segment, order_days_band

),

final as (

    select
        cast(churn_ratios.segment as string) as segment,
        cast(churn_ratios.order_days_band as string) as order_days_band,
        {{ as_of_date() }} as as_of_date,
        cast(churn_ratios.at_risk_ratio as double) as at_risk_ratio,
        cast(churn_ratios.churn_ratio as double) as churn_ratio,
        cast(churn_ratios.at_risk_ratio_source as string) as at_risk_ratio_source,
        cast(churn_ratios.churn_ratio_source as string) as churn_ratio_source,
        cast(churn_ratios.learned_at_risk_ratio as double) as learned_at_risk_ratio,
        cast(churn_ratios.learned_churn_ratio as double) as learned_churn_ratio,
        cast(churn_ratios.segment_at_risk_ratio as double) as segment_at_risk_ratio,
        cast(churn_ratios.segment_churn_ratio as double) as segment_churn_ratio,
        cast(churn_ratios.at_risk_target as double) as at_risk_target,
        cast(churn_ratios.cases as bigint) as cases,
        cast(churn_ratios.base_rate as double) as base_rate,
        cast(coalesce(evidence.lost_cases, 0) as bigint) as lost_cases,
        cast(coalesce(evidence.churned_flagged, 0) as bigint) as churned_flagged,
        cast(evidence.churned_hits / nullif(evidence.churned_flagged, 0) as double) as churned_precision,
        cast(evidence.churned_hits / nullif(evidence.lost_cases, 0) as double) as churned_recall,
        cast(coalesce(evidence.at_risk_flagged, 0) as bigint) as at_risk_flagged,
        cast(evidence.at_risk_hits / nullif(evidence.at_risk_flagged, 0) as double) as at_risk_precision,
        cast(evidence.at_risk_hits / nullif(evidence.lost_cases, 0) as double) as at_risk_recall,
        cast(evidence.median_horizon_days as double) as median_horizon_days,
        cast(evidence.first_backtest_date as date) as first_backtest_date,
        cast(evidence.last_backtest_date as date) as last_backtest_date

    from churn_ratios
    left join evidence
        on
            churn_ratios.segment = evidence.segment
            and churn_ratios.order_days_band = evidence.order_days_band

)

select * from final
