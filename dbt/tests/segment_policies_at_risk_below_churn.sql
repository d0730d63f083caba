-- The at-risk factor of every segment is below its churn factor (docs/rules.md "Cadence
-- rule"): default factors give way; two segment_policy factors that break it fail here,
-- naming the segment.
select
    segment,
    at_risk_ratio,
    churn_ratio,
    at_risk_ratio_source,
    churn_ratio_source

from {{ ref('int_clients__segment_policies') }}

where not at_risk_ratio < churn_ratio
