-- The at-risk and churn factors of each segment, and where they come from: segment_policy
-- where it sets them (it always wins), else the project defaults (vars at_risk_ratio,
-- churn_ratio). One row per segment of dim_clients or segment_policy.

with

clients as (

    select * from {{ ref('dim_clients') }}

),

segment_policy as (

    select * from {{ ref('segment_policy') }}

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

final as (

    select
        segments.segment,
        coalesce(
            policies.policy_at_risk_ratio, cast({{ var('at_risk_ratio') }} as double)
        ) as at_risk_ratio,
        coalesce(
            policies.policy_churn_ratio, cast({{ var('churn_ratio') }} as double)
        ) as churn_ratio,
        case when policies.policy_at_risk_ratio is not null then 'policy' else 'default' end
            as at_risk_ratio_source,
        case when policies.policy_churn_ratio is not null then 'policy' else 'default' end
            as churn_ratio_source

    from segments
    left join policies
        on segments.segment = policies.segment

    where segments.segment is not null

)

select * from final
