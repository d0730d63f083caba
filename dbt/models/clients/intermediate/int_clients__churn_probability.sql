-- churn_probability and the churned / at-risk flags of each client at D (docs/rules.md
-- "Churn score"): the probability is the chosen score's (int_clients__churn_model, fitted
-- on the company's own past); the flags come from it where the score sets them, and from
-- the cadence rule (int_clients__cadence with int_clients__segment_policies) where the
-- segment's policy sets a factor (the policy always wins) or where the score had too few
-- past cases to set them (flags_from = 'cadence_rule').

with

cadence as (

    select * from {{ ref('int_clients__cadence') }}

),

segment_policies as (

    select * from {{ ref('int_clients__segment_policies') }}

),

churn_model as (

    select * from {{ ref('int_clients__churn_model') }}

),

scores as (

    select * from churn_model

    where row_kind = 'client'

),

joined as (

    select
        cadence.client_id,
        cadence.segment,
        cadence.last_order_date,
        cadence.is_churned as cadence_is_churned,
        cadence.is_at_risk as cadence_is_at_risk,
        scores.churn_probability,
        scores.score_is_churned,
        scores.score_is_at_risk,
        scores.flags_from,
        scores.chosen_candidate,
        scores.score_drivers,
        scores.churned_level,
        scores.churned_precision,
        scores.at_risk_level,
        scores.at_risk_precision,
        scores.horizon_days,
        coalesce(segment_policies.churn_ratio_source = 'policy', false) as has_policy_churn,
        coalesce(segment_policies.at_risk_ratio_source = 'policy', false) as has_policy_at_risk

    from cadence
    left join scores
        on cadence.client_id = scores.client_id
    left join segment_policies
        on cadence.segment = segment_policies.segment

),

decided as (

    select
        *,
        case
            when last_order_date is null then 'not_judged'
            when has_policy_churn or has_policy_at_risk then 'policy'
            when flags_from = 'score' then 'score'
            else 'cadence_rule'
        end as flag_source

    from joined

),

final as (

    select
        client_id,
        segment,
        -- null: no completed order yet, or no past case to calibrate on
        case when last_order_date is not null then churn_probability end as churn_probability,
        flag_source,
        case
            when flag_source = 'score' then coalesce(score_is_churned, false)
            else coalesce(cadence_is_churned, false)
        end as is_churned,
        case
            when flag_source = 'score' then coalesce(score_is_at_risk, false)
            else coalesce(cadence_is_at_risk, false)
        end as is_at_risk,
        chosen_candidate,
        case when last_order_date is not null then score_drivers end as score_drivers,
        churned_level,
        churned_precision,
        at_risk_level,
        at_risk_precision,
        horizon_days

    from decided

)

select * from final
