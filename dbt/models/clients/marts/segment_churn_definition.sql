-- Where the cadence rule's "churned" and "at risk" begin for each segment (policy or
-- default factors, int_clients__segment_policies) and how right they were on the past cases
-- of each order-days band (docs/rules.md "Churn from evidence"). One row per (segment of
-- int_clients__segment_policies, order-days band).

with

segment_policies as (

    select * from {{ ref('int_clients__segment_policies') }}

),

backtest_flags as (

    select * from {{ ref('int_clients__backtest_flags') }}

),

bands as (

    select band.order_days_band

    from (
        values
        {%- for band in order_days_bands() %}
            ('{{ band }}'){{ "," if not loop.last }}
        {%- endfor %}
    ) as band (order_days_band)

),

evidence as (

    select
        cast(segment as string) as segment,
        {{ order_days_band('distinct_order_days') }} as order_days_band,
        count(*) as cases,
        avg(case when did_not_order_again then cast(1 as double) else cast(0 as double) end) as base_rate,
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
        cast(segment_policies.segment as string) as segment,
        cast(bands.order_days_band as string) as order_days_band,
        {{ as_of_date() }} as as_of_date,
        cast(segment_policies.at_risk_ratio as double) as at_risk_ratio,
        cast(segment_policies.churn_ratio as double) as churn_ratio,
        cast(segment_policies.at_risk_ratio_source as string) as at_risk_ratio_source,
        cast(segment_policies.churn_ratio_source as string) as churn_ratio_source,
        cast(coalesce(evidence.cases, 0) as bigint) as cases,
        cast(evidence.base_rate as double) as base_rate,
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

    from segment_policies
    cross join bands
    left join evidence
        on
            segment_policies.segment = evidence.segment
            and bands.order_days_band = evidence.order_days_band

)

select * from final
