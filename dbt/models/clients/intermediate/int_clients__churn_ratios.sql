-- The at-risk and churn factors of each segment and where they come from: segment_policy
-- where it sets them (it always wins), else learned from the segment's past cases, else
-- the project defaults. One row per segment of dim_clients or segment_policy.
-- Learned factor: the lowest candidate ratio (1.0, 1.1, ... 20.0) from which at least the
-- target share of the segment's past cases did not order again within their horizon,
-- resting on at least churn_min_cases cases (those at or above it). Past cases come only
-- from int_clients__backtest_cases (horizons passed by D), so nothing after D is used.

with

clients as (

    select * from {{ ref('dim_clients') }}

),

segment_policy as (

    select * from {{ ref('segment_policy') }}

),

backtest_cases as (

    select * from {{ ref('int_clients__backtest_cases') }}

),

segments as (

    select distinct cast(segment as varchar) as segment from clients
    union
    select distinct cast(segment as varchar) as segment from segment_policy

),

policies as (

    select
        cast(segment as varchar) as segment,
        cast(at_risk_ratio as double) as policy_at_risk_ratio,
        cast(churn_ratio as double) as policy_churn_ratio

    from segment_policy

),

candidates as (

    select cast(grid.step as double) / 10 as candidate_ratio

    from range(10, 201) as grid (step)

),

segment_cases as (

    select
        cast(segment as varchar) as segment,
        count(*) as cases

    from backtest_cases

    group by segment

),

-- for each candidate: the segment's past cases at or above it, and the share of them that
-- did not order again
curve as (

    select
        cast(backtest_cases.segment as varchar) as segment,
        candidates.candidate_ratio,
        count(*) as cases_from,
        avg(case when backtest_cases.did_not_order_again then 1.0 else 0.0 end) as lost_share_from

    from candidates
    inner join backtest_cases
        on candidates.candidate_ratio <= backtest_cases.overdue_ratio

    group by backtest_cases.segment, candidates.candidate_ratio

),

with_policy as (

    select
        segments.segment,
        policies.policy_at_risk_ratio,
        policies.policy_churn_ratio,
        coalesce(segment_cases.cases, 0) as cases

    from segments
    left join policies
        on segments.segment = policies.segment
    left join segment_cases
        on segments.segment = segment_cases.segment

    where segments.segment is not null

),

learned_churn as (

    -- above a policy's at-risk factor, so that at-risk stays below churned
    select
        with_policy.segment,
        min(curve.candidate_ratio) as learned_churn_ratio

    from with_policy
    inner join curve
        on with_policy.segment = curve.segment

    where
        curve.lost_share_from >= {{ var('churn_target_precision') }}
        and curve.cases_from >= {{ var('churn_min_cases') }}
        and curve.candidate_ratio > coalesce(with_policy.policy_at_risk_ratio, 0)

    group by with_policy.segment

),

churn_factors as (

    select
        with_policy.*,
        learned_churn.learned_churn_ratio,
        case
            when with_policy.policy_churn_ratio is not null then with_policy.policy_churn_ratio
            when learned_churn.learned_churn_ratio is not null then learned_churn.learned_churn_ratio
            -- a policy at-risk factor at or above the default churn factor: keep the defaults'
            -- proportion above it
            when with_policy.policy_at_risk_ratio >= {{ var('churn_ratio') }}
                then
                    with_policy.policy_at_risk_ratio
                    * {{ var('churn_ratio') }} / {{ var('at_risk_ratio') }}
            else cast({{ var('churn_ratio') }} as double)
        end as churn_ratio,
        case
            when with_policy.policy_churn_ratio is not null then 'policy'
            when learned_churn.learned_churn_ratio is not null then 'learned'
            else 'default'
        end as churn_ratio_source

    from with_policy
    left join learned_churn
        on with_policy.segment = learned_churn.segment

),

learned_at_risk as (

    -- below the churn factor in effect
    select
        churn_factors.segment,
        min(curve.candidate_ratio) as learned_at_risk_ratio

    from churn_factors
    inner join curve
        on churn_factors.segment = curve.segment

    where
        curve.lost_share_from >= {{ var('at_risk_target_precision') }}
        and curve.cases_from >= {{ var('churn_min_cases') }}
        and curve.candidate_ratio < churn_factors.churn_ratio

    group by churn_factors.segment

),

final as (

    select
        churn_factors.segment,
        case
            when churn_factors.policy_at_risk_ratio is not null then churn_factors.policy_at_risk_ratio
            when learned_at_risk.learned_at_risk_ratio is not null then learned_at_risk.learned_at_risk_ratio
            when {{ var('at_risk_ratio') }} < churn_factors.churn_ratio then cast({{ var('at_risk_ratio') }} as double)
            -- a churn factor at or below the default at-risk factor: the defaults' proportion
            else churn_factors.churn_ratio * {{ var('at_risk_ratio') }} / {{ var('churn_ratio') }}
        end as at_risk_ratio,
        churn_factors.churn_ratio,
        case
            when churn_factors.policy_at_risk_ratio is not null then 'policy'
            when learned_at_risk.learned_at_risk_ratio is not null then 'learned'
            else 'default'
        end as at_risk_ratio_source,
        churn_factors.churn_ratio_source,
        churn_factors.cases,
        learned_at_risk.learned_at_risk_ratio,
        churn_factors.learned_churn_ratio

    from churn_factors
    left join learned_at_risk
        on churn_factors.segment = learned_at_risk.segment

)

select * from final
