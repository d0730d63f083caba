-- The at-risk and churn factors of each (segment, order-days band) and where they come
-- from (docs/rules.md "Churn from evidence"). One row per segment of dim_clients or
-- segment_policy and band of order_days_band (1, 2-3, 4+ order days).
-- Fallback order of each factor: segment_policy where it sets it (always wins), else
-- learned from the cell's past cases, else learned from all the segment's past cases,
-- else the project default.
-- Learned churn factor: the lowest candidate ratio (1.0, 1.1, ... 20.0) from which at least
-- churn_target_precision of the past cases did not order again within their horizon,
-- resting on at least churn_min_cases cases (those at or above it). Learned at-risk factor:
-- likewise below the churn factor in effect, with the target share halfway between the
-- cases' base rate (share lost at any ratio) and the churn target, at least
-- at_risk_target_precision: an at-risk flag must beat "everyone" clearly. Where it gives
-- none: no at-risk band (at-risk factor = churn factor, source 'none') if the cell has
-- churn_min_cases cases at or above the default at-risk factor (the evidence judged the
-- default and found it wanting); else the segment's at-risk factor if the cell has fewer
-- than churn_min_cases cases in all; else the default. Also no band where the churn factor
-- rests on evidence and the default at-risk factor is not below it.
-- Past cases come only from int_clients__backtest_cases (horizons passed by D), so nothing
-- after D is used.

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

    select distinct cast(segment as string) as segment from clients
    union
    select distinct cast(segment as string) as segment from segment_policy

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

policies as (

    select
        cast(segment as string) as segment,
        cast(at_risk_ratio as double) as policy_at_risk_ratio,
        cast(churn_ratio as double) as policy_churn_ratio

    from segment_policy

),

candidates as (

    select cast(grid.n as double) / 10 as candidate_ratio

    from ({{ integer_series(10, 200) }}) as grid

),

cases as (

    select
        cast(segment as string) as segment,
        {{ order_days_band('distinct_order_days') }} as order_days_band,
        overdue_ratio,
        cast(case when did_not_order_again then 1 else 0 end as double) as lost

    from backtest_cases

),

cell_cases as (

    select
        segment,
        order_days_band,
        count(*) as cases,
        count(*) filter (where overdue_ratio >= {{ var('at_risk_ratio') }}) as cases_from_default_at_risk,
        avg(lost) as base_rate

    from cases

    group by segment, order_days_band

),

segment_cases as (

    select
        segment,
        count(*) as cases,
        avg(lost) as base_rate

    from cases

    group by segment

),

-- for each candidate: the past cases at or above it, and the share of them that did not
-- order again; per cell and per segment (all bands)
cell_curve as (

    select
        cases.segment,
        cases.order_days_band,
        candidates.candidate_ratio,
        count(*) as cases_from,
        avg(cases.lost) as lost_share_from

    from candidates
    inner join cases
        on candidates.candidate_ratio <= cases.overdue_ratio

    group by cases.segment, cases.order_days_band, candidates.candidate_ratio

),

segment_curve as (

    select
        cases.segment,
        candidates.candidate_ratio,
        count(*) as cases_from,
        avg(cases.lost) as lost_share_from

    from candidates
    inner join cases
        on candidates.candidate_ratio <= cases.overdue_ratio

    group by cases.segment, candidates.candidate_ratio

),

cells as (

    select
        segments.segment,
        bands.order_days_band,
        policies.policy_at_risk_ratio,
        policies.policy_churn_ratio,
        coalesce(cell_cases.cases, 0) as cases,
        coalesce(cell_cases.cases_from_default_at_risk, 0) as cases_from_default_at_risk,
        cell_cases.base_rate,
        segment_cases.base_rate as segment_base_rate

    from segments
    cross join bands
    left join policies
        on segments.segment = policies.segment
    left join cell_cases
        on
            segments.segment = cell_cases.segment
            and bands.order_days_band = cell_cases.order_days_band
    left join segment_cases
        on segments.segment = segment_cases.segment

    where segments.segment is not null

),

-- above a policy's at-risk factor, so that at-risk stays below churned
learned_churn as (

    select
        cells.segment,
        cells.order_days_band,
        min(cell_curve.candidate_ratio) as learned_churn_ratio

    from cells
    inner join cell_curve
        on
            cells.segment = cell_curve.segment
            and cells.order_days_band = cell_curve.order_days_band

    where
        cell_curve.lost_share_from >= {{ var('churn_target_precision') }}
        and cell_curve.cases_from >= {{ var('churn_min_cases') }}
        and cell_curve.candidate_ratio > coalesce(cells.policy_at_risk_ratio, 0)

    group by cells.segment, cells.order_days_band

),

segment_churn as (

    select
        cells.segment,
        cells.order_days_band,
        min(segment_curve.candidate_ratio) as segment_churn_ratio

    from cells
    inner join segment_curve
        on cells.segment = segment_curve.segment

    where
        segment_curve.lost_share_from >= {{ var('churn_target_precision') }}
        and segment_curve.cases_from >= {{ var('churn_min_cases') }}
        and segment_curve.candidate_ratio > coalesce(cells.policy_at_risk_ratio, 0)

    group by cells.segment, cells.order_days_band

),

churn_factors as (

    select
        cells.*,
        learned_churn.learned_churn_ratio,
        segment_churn.segment_churn_ratio,
        case
            when cells.policy_churn_ratio is not null then cells.policy_churn_ratio
            when learned_churn.learned_churn_ratio is not null then learned_churn.learned_churn_ratio
            when segment_churn.segment_churn_ratio is not null then segment_churn.segment_churn_ratio
            -- a policy at-risk factor at or above the default churn factor: keep the defaults'
            -- proportion above it
            when cells.policy_at_risk_ratio >= {{ var('churn_ratio') }}
                then
                    cells.policy_at_risk_ratio
                    * {{ var('churn_ratio') }} / {{ var('at_risk_ratio') }}
            else cast({{ var('churn_ratio') }} as double)
        end as churn_ratio,
        case
            when cells.policy_churn_ratio is not null then 'policy'
            when learned_churn.learned_churn_ratio is not null then 'learned'
            when segment_churn.segment_churn_ratio is not null then 'segment'
            else 'default'
        end as churn_ratio_source,
        -- halfway between the base rate and the churn target, at least the setting
        greatest(
            cast({{ var('at_risk_target_precision') }} as double),
            (cells.base_rate + {{ var('churn_target_precision') }}) / 2
        ) as at_risk_target,
        greatest(
            cast({{ var('at_risk_target_precision') }} as double),
            (cells.segment_base_rate + {{ var('churn_target_precision') }}) / 2
        ) as segment_at_risk_target

    from cells
    left join learned_churn
        on
            cells.segment = learned_churn.segment
            and cells.order_days_band = learned_churn.order_days_band
    left join segment_churn
        on
            cells.segment = segment_churn.segment
            and cells.order_days_band = segment_churn.order_days_band

),

-- below the churn factor in effect
learned_at_risk as (

    select
        churn_factors.segment,
        churn_factors.order_days_band,
        min(cell_curve.candidate_ratio) as learned_at_risk_ratio

    from churn_factors
    inner join cell_curve
        on
            churn_factors.segment = cell_curve.segment
            and churn_factors.order_days_band = cell_curve.order_days_band

    where
        cell_curve.lost_share_from >= churn_factors.at_risk_target
        and cell_curve.cases_from >= {{ var('churn_min_cases') }}
        and cell_curve.candidate_ratio < churn_factors.churn_ratio

    group by churn_factors.segment, churn_factors.order_days_band

),

segment_at_risk as (

    select
        churn_factors.segment,
        churn_factors.order_days_band,
        min(segment_curve.candidate_ratio) as segment_at_risk_ratio

    from churn_factors
    inner join segment_curve
        on churn_factors.segment = segment_curve.segment

    where
        segment_curve.lost_share_from >= churn_factors.segment_at_risk_target
        and segment_curve.cases_from >= {{ var('churn_min_cases') }}
        and segment_curve.candidate_ratio < churn_factors.churn_ratio

    group by churn_factors.segment, churn_factors.order_days_band

),

final as (

    select
        churn_factors.segment,
        churn_factors.order_days_band,
        case
            when churn_factors.policy_at_risk_ratio is not null then churn_factors.policy_at_risk_ratio
            when learned_at_risk.learned_at_risk_ratio is not null then learned_at_risk.learned_at_risk_ratio
            -- enough cases at or above the default at-risk factor and none of the ratios
            -- beats their base rate clearly: the evidence says no at-risk band
            when churn_factors.cases_from_default_at_risk >= {{ var('churn_min_cases') }}
                then churn_factors.churn_ratio
            -- the segment's factor (learned mostly on other bands) only stands in for a cell
            -- with too few cases of its own
            when
                churn_factors.cases < {{ var('churn_min_cases') }}
                and segment_at_risk.segment_at_risk_ratio is not null
                then segment_at_risk.segment_at_risk_ratio
            when {{ var('at_risk_ratio') }} < churn_factors.churn_ratio then cast({{ var('at_risk_ratio') }} as double)
            -- a churn factor from evidence at or below the default at-risk factor, and no
            -- at-risk factor reaching its target below it: no at-risk band
            when churn_factors.churn_ratio_source in ('learned', 'segment') then churn_factors.churn_ratio
            -- a churn factor at or below the default at-risk factor: the defaults' proportion
            else churn_factors.churn_ratio * {{ var('at_risk_ratio') }} / {{ var('churn_ratio') }}
        end as at_risk_ratio,
        churn_factors.churn_ratio,
        case
            when churn_factors.policy_at_risk_ratio is not null then 'policy'
            when learned_at_risk.learned_at_risk_ratio is not null then 'learned'
            when churn_factors.cases_from_default_at_risk >= {{ var('churn_min_cases') }} then 'none'
            when
                churn_factors.cases < {{ var('churn_min_cases') }}
                and segment_at_risk.segment_at_risk_ratio is not null
                then 'segment'
            when {{ var('at_risk_ratio') }} < churn_factors.churn_ratio then 'default'
            when churn_factors.churn_ratio_source in ('learned', 'segment') then 'none'
            else 'default'
        end as at_risk_ratio_source,
        churn_factors.churn_ratio_source,
        churn_factors.cases,
        churn_factors.base_rate,
        churn_factors.at_risk_target,
        learned_at_risk.learned_at_risk_ratio,
        churn_factors.learned_churn_ratio,
        segment_at_risk.segment_at_risk_ratio,
        churn_factors.segment_churn_ratio

    from churn_factors
    left join learned_at_risk
        on
            churn_factors.segment = learned_at_risk.segment
            and churn_factors.order_days_band = learned_at_risk.order_days_band
    left join segment_at_risk
        on
            churn_factors.segment = segment_at_risk.segment
            and churn_factors.order_days_band = segment_at_risk.order_days_band

)

select * from final
