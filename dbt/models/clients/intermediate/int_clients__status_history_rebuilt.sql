-- The status of every client on every history date of the spine (is_history_date), by the
-- rules of int_clients__cadence (flags), int_clients__volume, int_clients__lifecycle_today
-- and int_clients__abc_ranking (ABC on revenue) applied to int_clients__cadence_history.
-- Revenue windows come from exact prefix sums per client: the sum over (d - n, d] is
-- cum(d) - cum(d - n), each cum an ASOF join, rounded like money_sum.
{%- set growth_days = var('growth_window_days') -%}
{%- set a_threshold = "cast(" ~ var('abc_a_threshold') ~ " as double)" -%}
{%- set b_threshold = "cast(" ~ var('abc_b_threshold') ~ " as double)" -%}
{%- set money = "decimal(38, 10)" %}

with

cadence_history as (

    select * from {{ ref('int_clients__cadence_history') }}

),

churn_ratios as (

    select * from {{ ref('int_clients__churn_ratios') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

history_points as (

    select * from cadence_history

    where is_history_date

),

-- exact sums (decimal) so that windows taken as differences of prefix sums equal the
-- daily models' compensated sums once both are rounded to money_decimals
order_day_revenue as (

    select
        client_id,
        order_date,
        sum(cast(net_revenue as {{ money }})) as revenue

    from orders

    group by client_id, order_date

),

cumulative_revenue as (

    select
        client_id,
        order_date,
        sum(revenue) over (
            partition by client_id order by order_date
            rows between unbounded preceding and current row
        ) as cum_revenue

    from order_day_revenue

),

prefix_sums as (

    select
        history_points.as_of_date,
        history_points.client_id,
        coalesce(at_d.cum_revenue, 0) as cum_d,
        coalesce(at_volume.cum_revenue, 0) as cum_volume,
        coalesce(at_growth.cum_revenue, 0) as cum_growth,
        coalesce(at_year.cum_revenue, 0) as cum_year,
        coalesce(at_growth_prior.cum_revenue, 0) as cum_growth_prior,
        coalesce(at_abc.cum_revenue, 0) as cum_abc

    from history_points
    asof left join cumulative_revenue as at_d
        on
            history_points.client_id = at_d.client_id
            and history_points.as_of_date >= at_d.order_date
    asof left join cumulative_revenue as at_volume
        on
            history_points.client_id = at_volume.client_id
            and history_points.as_of_date - 90 >= at_volume.order_date
    asof left join cumulative_revenue as at_growth
        on
            history_points.client_id = at_growth.client_id
            and history_points.as_of_date - {{ growth_days }} >= at_growth.order_date
    asof left join cumulative_revenue as at_year
        on
            history_points.client_id = at_year.client_id
            and history_points.as_of_date - 360 >= at_year.order_date
    asof left join cumulative_revenue as at_growth_prior
        on
            history_points.client_id = at_growth_prior.client_id
            and history_points.as_of_date - {{ 2 * growth_days }} >= at_growth_prior.order_date
    asof left join cumulative_revenue as at_abc
        on
            history_points.client_id = at_abc.client_id
            and history_points.as_of_date - {{ var('abc_window_days') }} >= at_abc.order_date

),

revenue_windows as (

    select
        as_of_date,
        client_id,
        -- int_clients__volume: D-89 .. D against D-359 .. D-90
        cast(round(cum_d - cum_volume, {{ var('money_decimals') }}) as double) as revenue_last_90d,
        cast(round(cum_volume - cum_year, {{ var('money_decimals') }}) as double) / 3.0
            as baseline_revenue_90d,
        -- int_clients__lifecycle_today: the last growth_window_days against those before
        cast(round(cum_d - cum_growth, {{ var('money_decimals') }}) as double) as revenue_recent_period,
        cast(round(cum_growth - cum_growth_prior, {{ var('money_decimals') }}) as double) as revenue_prior_period,
        -- int_clients__abc_ranking: the abc_window_days ending on the date
        cast(round(cum_d - cum_abc, {{ var('money_decimals') }}) as double) as net_revenue_365d

    from prefix_sums

),

abc_ranked as (

    select
        as_of_date,
        client_id,
        coalesce(sum(net_revenue_365d) over (
            partition by as_of_date order by net_revenue_365d desc, client_id asc
            rows between unbounded preceding and 1 preceding
        ), 0) / sum(net_revenue_365d) over (partition by as_of_date) as share_before

    from revenue_windows

    where net_revenue_365d > 0

),

flags as (

    select
        history_points.as_of_date,
        history_points.client_id,
        history_points.first_order_date,
        history_points.last_order_date,
        history_points.days_since_last_order,
        history_points.expected_interval_days,
        history_points.overdue_ratio,
        coalesce(
            history_points.overdue_ratio
            >= coalesce(churn_ratios.churn_ratio, cast({{ var('churn_ratio') }} as double)),
            false
        ) as is_churned,
        coalesce(
            history_points.overdue_ratio
            >= coalesce(churn_ratios.at_risk_ratio, cast({{ var('at_risk_ratio') }} as double))
            and history_points.overdue_ratio
            < coalesce(churn_ratios.churn_ratio, cast({{ var('churn_ratio') }} as double)),
            false
        ) as is_at_risk,
        case
            when
                history_points.expected_interval_days <= {{ var('volume_max_interval_days') }}
                and revenue_windows.baseline_revenue_90d > 0
                then
                    revenue_windows.revenue_last_90d
                    <= (1 - cast({{ var('volume_drop_share') }} as double))
                    * revenue_windows.baseline_revenue_90d
        end as has_volume_drop,
        history_points.first_order_date
        > history_points.as_of_date - {{ var('new_client_days') }} as is_new_client,
        coalesce(
            revenue_windows.revenue_prior_period > 0
            and revenue_windows.revenue_recent_period
            >= (1 + cast({{ var('growth_share') }} as double)) * revenue_windows.revenue_prior_period,
            false
        ) as is_growing,
        coalesce(
            history_points.overdue_ratio
            < coalesce(churn_ratios.churn_ratio, cast({{ var('churn_ratio') }} as double))
            and history_points.last_order_date
            > history_points.as_of_date - {{ var('new_client_days') }}
            and history_points.last_gap_days
            >= coalesce(churn_ratios.churn_ratio, cast({{ var('churn_ratio') }} as double))
            * history_points.expected_interval_days,
            false
        ) as is_reactivated,
        case
            when abc_ranked.share_before < {{ a_threshold }} then 'A'
            when abc_ranked.share_before < {{ b_threshold }} then 'B'
            when abc_ranked.share_before is not null then 'C'
        end as abc_class

    from history_points
    inner join revenue_windows
        on
            history_points.as_of_date = revenue_windows.as_of_date
            and history_points.client_id = revenue_windows.client_id
    left join abc_ranked
        on
            history_points.as_of_date = abc_ranked.as_of_date
            and history_points.client_id = abc_ranked.client_id
    left join churn_ratios
        on
            history_points.segment = churn_ratios.segment
            and {{ order_days_band('history_points.distinct_order_days') }} = churn_ratios.order_days_band

),

staged as (

    select
        *,
        case
            when is_churned then 'churn'
            when is_at_risk or coalesce(has_volume_drop, false) then 'decline'
            when is_new_client then 'acquisition'
            when is_growing then 'development'
            else 'maturity'
        end as lifecycle_stage

    from flags

),

final as (

    select
        as_of_date,
        client_id,
        lifecycle_stage,
        case
            when lifecycle_stage = 'churn' then 'lost'
            when is_reactivated then 'reactivated'
            when lifecycle_stage = 'decline' then 'at_risk'
            when lifecycle_stage = 'acquisition' then 'new'
            else 'active'
        end as status_group,
        is_at_risk,
        is_churned,
        has_volume_drop,
        is_reactivated,
        is_new_client,
        is_growing,
        abc_class,
        first_order_date,
        last_order_date,
        days_since_last_order,
        expected_interval_days,
        overdue_ratio

    from staged

)

select * from final
