{%- set crm = 'true' if has_crm() else 'false' -%}

-- How often each flag was right on past dates (docs/rules.md "Churn from evidence"): per
-- period (every backtest date, and 'all' of them pooled) x segment (and 'all', marked by
-- is_all_segments: a real segment may be named 'all') x flag,
-- the clients flagged on a backtest date and how many of them did not order again within
-- their horizon. decision_maker_left only with a CRM (absent, not wrong, without one).

with

backtest_flags as (

    select * from {{ ref('int_clients__backtest_flags') }}

),

flag_names as (

    select flags.flag

    from (
        values
        ('churned'),
        ('at_risk'),
        ('churned_or_at_risk'),
        ('volume_drop'),
        ('decision_maker_left')
    ) as flags (flag)

    where flags.flag <> 'decision_maker_left' or {{ crm }}

),

case_flags as (

    select
        backtest_flags.as_of_date as backtest_date,
        coalesce(backtest_flags.segment, 'unknown') as segment,
        flag_names.flag,
        backtest_flags.did_not_order_again,
        case flag_names.flag
            when 'churned' then backtest_flags.is_churned
            when 'at_risk' then backtest_flags.is_at_risk
            when 'churned_or_at_risk' then backtest_flags.is_churned or backtest_flags.is_at_risk
            when 'volume_drop' then backtest_flags.has_volume_drop
            when 'decision_maker_left' then backtest_flags.decision_maker_left
        end as is_flagged

    from backtest_flags
    cross join flag_names

),

-- lead time of the at-risk flag: per silent spell (client, last order day) that was at risk
-- on a backtest date and churned on a later one, and did not order again after churning
spells as (

    select
        client_id,
        last_order_date,
        coalesce(min(segment), 'unknown') as segment,
        min(as_of_date) filter (where is_at_risk) as first_at_risk_date,
        min(as_of_date) filter (where is_churned) as first_churned_date

    from backtest_flags

    group by client_id, last_order_date

),

leads as (

    select
        spells.segment,
        spells.first_churned_date as backtest_date,
        {{ dbt.datediff('spells.first_at_risk_date', 'spells.first_churned_date', 'day') }} as lead_days

    from spells
    inner join backtest_flags
        on
            spells.client_id = backtest_flags.client_id
            and spells.first_churned_date = backtest_flags.as_of_date

    where
        spells.first_at_risk_date < spells.first_churned_date
        and backtest_flags.did_not_order_again

),

counted as (

    select
        backtest_date,
        segment,
        flag,
        -- pooled over segments: told by the grouping, not by the label, so a segment that
        -- is itself named 'all' keeps rows of its own
        grouping(segment) = 1 as is_all_segments,
        min(backtest_date) as first_backtest_date,
        max(backtest_date) as last_backtest_date,
        count(*) as cases,
        count(is_flagged) as judged,
        count(*) filter (where is_flagged) as flagged,
        count(*) filter (where is_flagged and did_not_order_again) as hits,
        count(*) filter (where is_flagged is not null and did_not_order_again) as lost

    from case_flags

    group by grouping sets (
        (backtest_date, segment, flag),
        (backtest_date, flag),
        (segment, flag),
        (flag)
    )

),

lead_times as (

    select
        backtest_date,
        segment,
        'at_risk' as flag,
        median(lead_days) as median_lead_days,
        count(*) as lead_cases,
        grouping(segment) = 1 as is_all_segments

    from leads

    group by grouping sets ((backtest_date, segment), (backtest_date), (segment), ())

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        cast(coalesce(cast(counted.backtest_date as string), 'all') as string) as period,
        cast(counted.backtest_date as date) as backtest_date,
        cast(case when counted.is_all_segments then 'all' else counted.segment end as string) as segment,
        cast(counted.is_all_segments as boolean) as is_all_segments,
        cast(counted.flag as string) as flag,
        cast(counted.first_backtest_date as date) as first_backtest_date,
        cast(counted.last_backtest_date as date) as last_backtest_date,
        cast(counted.cases as bigint) as cases,
        cast(counted.judged as bigint) as judged,
        cast(counted.flagged as bigint) as flagged,
        cast(counted.hits as bigint) as hits,
        cast(counted.lost as bigint) as lost,
        cast(counted.hits / nullif(counted.flagged, 0) as double) as flag_precision,
        cast(counted.hits / nullif(counted.lost, 0) as double) as flag_recall,
        cast(counted.lost / nullif(counted.judged, 0) as double) as base_rate,
        cast(lead_times.median_lead_days as double) as median_lead_days,
        cast(
            case when counted.flag = 'at_risk' then coalesce(lead_times.lead_cases, 0) end as bigint
        ) as lead_cases

    from counted
    left join lead_times
        on
            counted.flag = lead_times.flag
            and counted.backtest_date is not distinct from lead_times.backtest_date
            and counted.segment is not distinct from lead_times.segment
            and counted.is_all_segments = lead_times.is_all_segments

)

select * from final
