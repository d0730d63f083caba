-- The status of every client on every history date of the spine (is_history_date): the
-- cadence rule's flags of int_clients__cadence_history, and the rules of
-- int_clients__volume, int_clients__lifecycle_today and int_clients__abc_ranking (ABC on
-- revenue) by their macros on the windows ending on that date.
-- Revenue windows come from exact prefix sums per client: the sum over (d - n, d] is
-- cum(d) - cum(d - n), taken by lag() over one day-by-day series per client, rounded like
-- money_sum (one sort instead of an ASOF join per window: 3x faster at 20,000 clients).
{%- set growth_days = var('growth_window_days') | int -%}
{%- set money = "decimal(38, 10)" -%}
{%- set lookback = [360, 2 * growth_days, var('abc_window_days') | int] | max %}

with

cadence_history as (

    select * from {{ ref('int_clients__cadence_history') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

history_points as (

    select * from cadence_history

    where is_history_date

),

-- the span of days each client needs: from the longest look-back before its first history
-- date to its last one
client_spans as (

    select
        client_id,
        min(as_of_date) - {{ lookback }} as first_day,
        max(as_of_date) as last_day

    from history_points

    group by client_id

),

-- exact sums (decimal) so that windows taken as differences of prefix sums carry no
-- cancellation noise; the difference is rounded as a double to money_decimals, like the
-- daily models' money_sum (round(fsum(...))); rounding the decimal itself was 7x slower
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
        order_day_revenue.client_id,
        order_day_revenue.order_date,
        client_spans.first_day,
        client_spans.last_day,
        sum(order_day_revenue.revenue) over by_day as cum_revenue,
        lead(order_day_revenue.order_date) over by_day as next_order_date

    from order_day_revenue
    inner join client_spans
        on order_day_revenue.client_id = client_spans.client_id

    window by_day as (partition by order_day_revenue.client_id order by order_day_revenue.order_date)

),

-- cum(d) for every day of the span from the client's first order day on (each prefix sum
-- holds until the next order day), so that cum(d - n) is the row n days before
daily_cumulative as (

    select
        client_id,
        cum_revenue,
        {{ unnest_days(
            'greatest(order_date, first_day)',
            'least(coalesce(next_order_date - 1, last_day), last_day)'
        ) }} as day

    from cumulative_revenue

    where greatest(order_date, first_day) <= least(coalesce(next_order_date - 1, last_day), last_day)

),

-- a missing row n days before means no order yet: 0
prefix_sums as (

    select
        client_id,
        day as as_of_date,
        cum_revenue as cum_d,
        coalesce(lag(cum_revenue, 90) over by_day, 0) as cum_volume,
        coalesce(lag(cum_revenue, 360) over by_day, 0) as cum_year,
        coalesce(lag(cum_revenue, {{ growth_days }}) over by_day, 0) as cum_growth,
        coalesce(lag(cum_revenue, {{ 2 * growth_days }}) over by_day, 0) as cum_growth_prior,
        coalesce(lag(cum_revenue, {{ var('abc_window_days') }}) over by_day, 0) as cum_abc

    from daily_cumulative

    window by_day as (partition by client_id order by day)

),

-- the history points with their revenue windows (a client's series also covers dates
-- it has no history row on: joined on both keys; no series = no revenue = 0)
revenue_windows as (

    select
        history_points.*,
        -- int_clients__volume: D-89 .. D against D-359 .. D-90
        coalesce(round(cast(prefix_sums.cum_d - prefix_sums.cum_volume as double), {{ var('money_decimals') }}), 0)
            as revenue_last_90d,
        coalesce(round(cast(prefix_sums.cum_volume - prefix_sums.cum_year as double), {{ var('money_decimals') }}), 0) / 3.0
            as baseline_revenue_90d,
        -- int_clients__lifecycle_today: the last growth_window_days against those before
        coalesce(round(cast(prefix_sums.cum_d - prefix_sums.cum_growth as double), {{ var('money_decimals') }}), 0)
            as revenue_recent_period,
        coalesce(round(cast(prefix_sums.cum_growth - prefix_sums.cum_growth_prior as double), {{ var('money_decimals') }}), 0)
            as revenue_prior_period,
        -- int_clients__abc_ranking: the abc_window_days ending on the date
        coalesce(round(cast(prefix_sums.cum_d - prefix_sums.cum_abc as double), {{ var('money_decimals') }}), 0)
            as net_revenue_365d

    from history_points
    left join prefix_sums
        on
            history_points.client_id = prefix_sums.client_id
            and history_points.as_of_date = prefix_sums.as_of_date

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
        revenue_windows.as_of_date,
        revenue_windows.client_id,
        revenue_windows.first_order_date,
        revenue_windows.last_order_date,
        revenue_windows.days_since_last_order,
        revenue_windows.expected_interval_days,
        revenue_windows.overdue_ratio,
        revenue_windows.is_churned,
        revenue_windows.is_at_risk,
        {{ has_volume_drop(
            'revenue_windows.revenue_last_90d',
            'revenue_windows.baseline_revenue_90d',
            'revenue_windows.expected_interval_days'
        ) }} as has_volume_drop,
        {{ is_new_client('revenue_windows.first_order_date', 'revenue_windows.as_of_date') }} as is_new_client,
        {{ is_growing('revenue_windows.revenue_recent_period', 'revenue_windows.revenue_prior_period') }} as is_growing,
        {{ is_reactivated(
            'revenue_windows.is_churned',
            'revenue_windows.last_order_date',
            'revenue_windows.as_of_date',
            'revenue_windows.last_gap_days',
            'revenue_windows.churn_ratio',
            'revenue_windows.expected_interval_days'
        ) }} as is_reactivated,
        {{ abc_class('abc_ranked.share_before') }} as abc_class

    from revenue_windows
    left join abc_ranked
        on
            revenue_windows.as_of_date = abc_ranked.as_of_date
            and revenue_windows.client_id = abc_ranked.client_id

),

staged as (

    select
        *,
        {{ lifecycle_stage_rule() }} as lifecycle_stage

    from flags

),

final as (

    select
        as_of_date,
        client_id,
        lifecycle_stage,
        {{ status_group_rule() }} as status_group,
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
