-- What the cadence rule uses for each segment (docs/rules.md "Cadence and churn"): the
-- segment_policy seed's expected interval, and the at-risk and churn factors with their
-- source: the policy's where it sets them (always wins), else the project defaults (vars
-- at_risk_ratio, churn_ratio). One row per segment of dim_clients or segment_policy.
-- A default that would meet a policy factor keeps the defaults' proportion: churn =
-- policy at-risk x churn_ratio / at_risk_ratio when the policy at-risk factor is at or above
-- the default churn factor; at-risk = churn x at_risk_ratio / churn_ratio when the default
-- at-risk factor is not below the churn factor in effect.

with

clients as (

    select * from {{ ref('dim_clients') }}

),

segment_policy as (

    select * from {{ ref('segment_policy') }}

),

segments as (

    select distinct cast(segment as string) as segment from clients
    union
    select distinct cast(segment as string) as segment from segment_policy

),

policies as (

    select
        segments.segment,
        cast(segment_policy.expected_interval_days as double) as policy_interval_days,
        cast(segment_policy.at_risk_ratio as double) as policy_at_risk_ratio,
        cast(segment_policy.churn_ratio as double) as policy_churn_ratio

    from segments
    left join segment_policy
        on segments.segment = cast(segment_policy.segment as string)

    where segments.segment is not null

),

churn_factors as (

    select
        *,
        case
            when policy_churn_ratio is not null then policy_churn_ratio
            when policy_at_risk_ratio >= {{ var('churn_ratio') }}
                then policy_at_risk_ratio * {{ var('churn_ratio') }} / {{ var('at_risk_ratio') }}
            else cast({{ var('churn_ratio') }} as double)
        end as churn_ratio

    from policies

),

final as (

    select
        segment,
        policy_interval_days,
        case
            when policy_at_risk_ratio is not null then policy_at_risk_ratio
            when {{ var('at_risk_ratio') }} < churn_ratio then cast({{ var('at_risk_ratio') }} as double)
            else churn_ratio * {{ var('at_risk_ratio') }} / {{ var('churn_ratio') }}
        end as at_risk_ratio,
        churn_ratio,
        case when policy_at_risk_ratio is not null then 'policy' else 'default' end as at_risk_ratio_source,
        case when policy_churn_ratio is not null then 'policy' else 'default' end as churn_ratio_source

    from churn_factors

)

select * from final
