with

cadence as (

    select * from {{ ref('int_clients__cadence') }}

),

volume as (

    select * from {{ ref('int_clients__volume') }}

),

crm_signals as (

    select * from {{ ref('int_clients__crm_signals') }}

),

payment as (

    select * from {{ ref('int_clients__payment') }}

),

churn_probability as (

    select * from {{ ref('int_clients__churn_probability') }}

),

joined as (

    select
        cadence.client_id,
        cadence.segment,
        cadence.first_order_date,
        cadence.last_order_date,
        cadence.previous_order_day,
        cadence.last_gap_days,
        cadence.distinct_order_days,
        cadence.own_interval_days,
        cadence.learned_norm_days,
        cadence.policy_interval_days,
        cadence.expected_interval_days,
        cadence.interval_source,
        cadence.at_risk_ratio,
        cadence.churn_ratio,
        cadence.days_since_last_order,
        cadence.overdue_ratio,
        -- the flags are the churn score's (int_clients__churn_probability decides them)
        coalesce(churn_probability.is_churned, cadence.is_churned) as is_churned,
        coalesce(churn_probability.is_at_risk, cadence.is_at_risk) as is_at_risk,
        volume.revenue_last_90d,
        volume.baseline_revenue_90d,
        volume.volume_change_ratio,
        volume.has_volume_drop,
        crm_signals.decision_maker_left,
        crm_signals.decision_maker_left_at,
        crm_signals.complaints_90d,
        crm_signals.open_complaints,
        crm_signals.days_since_last_contact,
        crm_signals.is_silent,
        payment.invoices_365d,
        payment.late_invoices_365d,
        payment.has_poor_payment_discipline,
        churn_probability.churn_probability,
        churn_probability.flag_source,
        churn_probability.chosen_candidate,
        churn_probability.score_drivers,
        case
            when churn_probability.flag_source <> 'score' then null
            when churn_probability.is_churned then churn_probability.churned_precision
            when churn_probability.is_at_risk then churn_probability.at_risk_precision
        end as flag_precision,
        churn_probability.horizon_days

    from cadence
    left join volume
        on cadence.client_id = volume.client_id
    left join crm_signals
        on cadence.client_id = crm_signals.client_id
    left join payment
        on cadence.client_id = payment.client_id
    left join churn_probability
        on cadence.client_id = churn_probability.client_id

),

scored as (

    -- Weights (max 100): churned 40 or at risk 20, volume drop 15, decision maker left 15,
    -- poor payment 10, open complaints 10, silence 10. Unknown (null) signals weigh 0.
    -- A client without any completed order up to D is not judged: score null.
    select
        *,
        case
            when last_order_date is not null
                then
                    case when is_churned then 40 when is_at_risk then 20 else 0 end
                    + case when coalesce(has_volume_drop, false) then 15 else 0 end
                    + case when coalesce(decision_maker_left, false) then 15 else 0 end
                    + case when coalesce(has_poor_payment_discipline, false) then 10 else 0 end
                    + case when coalesce(open_complaints, 0) > 0 then 10 else 0 end
                    + case when coalesce(is_silent, false) then 10 else 0 end
        end as risk_score,
        case
            when expected_interval_days = round(expected_interval_days)
                then cast(cast(expected_interval_days as bigint) as string)
            else {{ format_string('%.1f', 'expected_interval_days') }}
        end as interval_text,
        -- the evidence behind a churned / overdue flag: the score and how right its flag was
        case
            when churn_probability is not null
                then
                    {{ format_string('%.0f', 'churn_probability * 100') }} || ' % churn probability within '
                    || horizon_days || ' days'
                    || coalesce(', driven by: ' || score_drivers, '')
                    || case
                        when flag_source = 'score' and flag_precision is not null
                            then
                                ' (flags at this level were right at least '
                                || {{ format_string('%.0f', 'flag_precision * 100') }}
                                || ' % of the time within ' || horizon_days
                                || ' days on the most recent past dates)'
                        when flag_source = 'policy' then ' (flag set by the segment policy)'
                        when flag_source = 'cadence_rule' then ' (flag by the cadence rule)'
                        else ''
                    end
        end as evidence_text

    from joined

),

explained as (

    select
        *,
        concat_ws(
            '; ',
            case when last_order_date is null then 'not judged: no completed order yet' end,
            case
                when is_churned or is_at_risk
                    then
                        case when is_churned then 'churned' else 'overdue' end
                        || ': ' || days_since_last_order || ' days since last order, '
                        || {{ format_ratio('overdue_ratio') }} || 'x the usual ' || interval_text || ' days'
                        || coalesce('; ' || evidence_text, '')
            end,
            case
                when has_volume_drop
                    then
                        'volume ' || {{ format_string('%+.0f', 'volume_change_ratio * 100') }} || '% vs baseline ('
                        || {{ format_money('revenue_last_90d') }} || ' in the last 90 days vs '
                        || {{ format_money('baseline_revenue_90d') }} || ' per 90 days before)'
            end,
            case
                when decision_maker_left then 'decision maker left ' || cast(cast(decision_maker_left_at as date) as string)
            end,
            case
                when has_poor_payment_discipline
                    then
                        'poor payment discipline: ' || late_invoices_365d || ' of ' || invoices_365d
                        || ' invoices late in 365 days'
            end,
            case when open_complaints > 0 then 'open complaints: ' || open_complaints end,
            case
                when is_silent and days_since_last_contact is null then 'no contact on record'
                when is_silent then 'no contact for ' || days_since_last_contact || ' days'
            end
        ) as reasons_text

    from scored

),

final as (

    select
        cast(client_id as string) as client_id,
        {{ as_of_date() }} as as_of_date,
        cast(segment as string) as segment,
        cast(last_order_date as date) as last_order_date,
        cast(days_since_last_order as bigint) as days_since_last_order,
        cast(distinct_order_days as bigint) as distinct_order_days,
        cast(expected_interval_days as double) as expected_interval_days,
        cast(interval_source as string) as interval_source,
        cast(overdue_ratio as double) as overdue_ratio,
        cast(is_at_risk as boolean) as is_at_risk,
        cast(is_churned as boolean) as is_churned,
        -- the one status a manager reads (is_at_risk is false for a churned client: the
        -- two flags are exclusive stages, not "risk yes / no")
        cast(
            case
                when last_order_date is null then 'not judged'
                when is_churned then 'churned'
                when is_at_risk then 'at risk'
                else 'active'
            end as string
        ) as churn_status,
        {{ to_money('revenue_last_90d') }} as revenue_last_90d,
        {{ to_money('baseline_revenue_90d') }} as baseline_revenue_90d,
        cast(volume_change_ratio as double) as volume_change_ratio,
        cast(has_volume_drop as boolean) as has_volume_drop,
        cast(decision_maker_left as boolean) as decision_maker_left,
        cast(has_poor_payment_discipline as boolean) as has_poor_payment_discipline,
        cast(late_invoices_365d as bigint) as late_invoices_365d,
        cast(complaints_90d as bigint) as complaints_90d,
        cast(open_complaints as bigint) as open_complaints,
        cast(days_since_last_contact as bigint) as days_since_last_contact,
        cast(risk_score as integer) as risk_score,
        cast(
            case
                when risk_score is null then null
                when risk_score >= 60 then 'critical'
                when risk_score >= 40 then 'high'
                when risk_score >= 20 then 'medium'
                else 'low'
            end as string
        ) as risk_level,
        cast(coalesce(nullif(reasons_text, ''), 'no warning sign') as string) as reasons,
        cast(own_interval_days as double) as own_interval_days,
        cast(at_risk_ratio as double) as at_risk_ratio,
        cast(churn_ratio as double) as churn_ratio,
        cast(decision_maker_left_at as date) as decision_maker_left_at,
        cast(invoices_365d as bigint) as invoices_365d,
        cast(is_silent as boolean) as is_silent,
        cast(churn_probability as double) as churn_probability,
        cast(flag_source as string) as flag_source,
        cast(flag_precision as double) as flag_precision

    from explained

)

select * from final
