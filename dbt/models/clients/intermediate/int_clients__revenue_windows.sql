-- The revenue rules of every client day a run needs (docs/rules.md "Volume", "Lifecycle",
-- "ABC"): one row per date of the spine (int_clients__as_of_dates: D, the history dates,
-- the backtest dates) and client with an order of any status up to that date: the revenue
-- windows ending on the date, volume drop, growth and the ABC ranking on revenue. The one
-- implementation of them: int_clients__volume and int_clients__abc_ranking read D's rows,
-- int_clients__lifecycle_days D's and the history dates', int_clients__backtest_flags the
-- backtest dates'.
-- Revenue windows come from exact prefix sums per client: the sum over (d - n, d] is
-- cum(d) - cum(d - n), rounded like money_sum. Only the prefix sums the run needs are taken:
-- * history dates (consecutive days on a first run, after a gap or from a backfill's
--   rebuild_from): lag() over one day-by-day series per client over their span (one sort; an
--   ASOF join per window was 3x slower there at 20,000 clients);
-- * D and the backtest dates that are not history dates (every backtest_every_days: all a
--   daily run after a daily run has): the prefix sums at the window starts looked up by one
--   ASOF join on the order days' prefix sums, no day series. A backtest-only date gets the
--   volume windows only (its one reader, int_clients__backtest_flags, takes has_volume_drop):
--   its growth and ABC columns are null.
{%- set growth_days = var('growth_window_days') | int -%}
{%- set abc_days = var('abc_window_days') | int -%}
{%- set money = "decimal(38, 10)" -%}
{%- set lookback = [360, 2 * growth_days, abc_days] | max %}

with

as_of_dates as (

    select * from {{ ref('int_clients__as_of_dates') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

cadence_history as (

    select * from {{ ref('int_clients__cadence_history') }}

),

-- exact sums (decimal) so that windows taken as differences of prefix sums carry no
-- cancellation noise; the difference is rounded as a double to money_decimals, like
-- money_sum (round(fsum(...))); rounding the decimal itself was 7x slower
order_day_revenue as (

    select
        client_id,
        order_date,
        sum(cast(net_revenue as {{ money }})) as revenue

    from orders

    group by client_id, order_date

),

client_dates as (

    select
        as_of_dates.as_of_date,
        as_of_dates.is_history_date,
        as_of_dates.is_backtest_date,
        as_of_dates.is_run_date,
        first_orders.client_id

    from (

        select
            client_id,
            min(order_date) as first_order_date

        from order_day_revenue

        group by client_id

    ) as first_orders
    inner join as_of_dates
        on first_orders.first_order_date <= as_of_dates.as_of_date

),

-- cum(d) on each order day (it holds until the next order day)
cumulative_revenue as (

    select
        client_id,
        order_date,
        sum(revenue) over by_day as cum_revenue,
        lead(order_date) over by_day as next_order_date

    from order_day_revenue

    window by_day as (partition by client_id order by order_date)

),

-- the history dates' span with the longest look-back before it (no history date: no span)
history_span as (

    select
        min(as_of_date) - {{ lookback }} as first_day,
        max(as_of_date) as last_day

    from as_of_dates

    where is_history_date

),

-- cum(d) for every day of the span from the client's first order day on, so that
-- cum(d - n) is the row n days before
daily_cumulative as (

    select
        cumulative_revenue.client_id,
        cumulative_revenue.cum_revenue,
        {{ unnest_days(
            'greatest(cumulative_revenue.order_date, history_span.first_day)',
            'least(coalesce(cumulative_revenue.next_order_date - 1, history_span.last_day), history_span.last_day)'
        ) }} as day

    from cumulative_revenue
    cross join history_span

    where
        greatest(cumulative_revenue.order_date, history_span.first_day)
        <= least(coalesce(cumulative_revenue.next_order_date - 1, history_span.last_day), history_span.last_day)

),

-- a missing row n days before means no order yet: 0
history_prefix_sums as (

    select
        client_id,
        day as as_of_date,
        cum_revenue as cum_d,
        coalesce(lag(cum_revenue, 90) over by_day, 0) as cum_volume,
        coalesce(lag(cum_revenue, 360) over by_day, 0) as cum_year,
        coalesce(lag(cum_revenue, {{ growth_days }}) over by_day, 0) as cum_growth,
        coalesce(lag(cum_revenue, {{ 2 * growth_days }}) over by_day, 0) as cum_growth_prior,
        coalesce(lag(cum_revenue, {{ abc_days }}) over by_day, 0) as cum_abc

    from daily_cumulative

    window by_day as (partition by client_id order by day)

),

-- the other dates' prefix sums: one lookup per (client, date, days back) it needs
lookups as (

    select
        client_dates.client_id,
        client_dates.as_of_date,
        prefixes.days_back,
        client_dates.as_of_date - prefixes.days_back as lookup_day

    from client_dates
    inner join (
        -- days back, needed on a backtest-only date (the volume windows' starts)
        select
            0 as days_back,
            true as on_backtest_only_date
        union all
        select
            90 as days_back,
            true as on_backtest_only_date
        union all
        select
            360 as days_back,
            true as on_backtest_only_date
        union all
        select
            {{ growth_days }} as days_back,
            false as on_backtest_only_date
        union all
        select
            {{ 2 * growth_days }} as days_back,
            false as on_backtest_only_date
        union all
        select
            {{ abc_days }} as days_back,
            false as on_backtest_only_date
    ) as prefixes
        on prefixes.on_backtest_only_date or client_dates.is_run_date

    where not client_dates.is_history_date

),

looked_up as (

    select
        lookups.client_id,
        lookups.as_of_date,
        lookups.days_back,
        -- no order day up to the lookup day: 0
        coalesce(cumulative_revenue.cum_revenue, 0) as cum_revenue

    from lookups
    {{ asof_left_join(
        'cumulative_revenue',
        'lookups.client_id = cumulative_revenue.client_id',
        'lookups.lookup_day',
        'cumulative_revenue.order_date',
        'cumulative_revenue.next_order_date'
    ) }}

),

-- one row per client and date (a sum the date does not need: null)
lookup_prefix_sums as (

    select
        looked_up.client_id,
        looked_up.as_of_date,
        max(case when looked_up.days_back = 0 then looked_up.cum_revenue end) as cum_d,
        max(case when looked_up.days_back = 90 then looked_up.cum_revenue end) as cum_volume,
        max(case when looked_up.days_back = 360 then looked_up.cum_revenue end) as cum_year,
        max(case when looked_up.days_back = {{ growth_days }} then looked_up.cum_revenue end) as cum_growth,
        max(case when looked_up.days_back = {{ 2 * growth_days }} then looked_up.cum_revenue end) as cum_growth_prior,
        max(case when looked_up.days_back = {{ abc_days }} then looked_up.cum_revenue end) as cum_abc

    from looked_up

    group by looked_up.client_id, looked_up.as_of_date

),

-- the series' rows of the history dates (not of the other dates within its span)
prefix_sums as (

    select history_prefix_sums.*

    from history_prefix_sums
    inner join as_of_dates
        on
            history_prefix_sums.as_of_date = as_of_dates.as_of_date
            and as_of_dates.is_history_date

    union all

    select * from lookup_prefix_sums

),

-- the client days with their revenue windows
revenue_windows as (

    select
        client_dates.*,
        -- volume: D-89 .. D against D-359 .. D-90
        round(cast(prefix_sums.cum_d - prefix_sums.cum_volume as double), {{ var('money_decimals') }})
            as revenue_last_90d,
        round(cast(prefix_sums.cum_volume - prefix_sums.cum_year as double), {{ var('money_decimals') }}) / 3.0
            as baseline_revenue_90d,
        -- growth: the last growth_window_days against those before
        round(cast(prefix_sums.cum_d - prefix_sums.cum_growth as double), {{ var('money_decimals') }})
            as revenue_recent_period,
        round(cast(prefix_sums.cum_growth - prefix_sums.cum_growth_prior as double), {{ var('money_decimals') }})
            as revenue_prior_period,
        -- ABC: the abc_window_days ending on the date
        round(cast(prefix_sums.cum_d - prefix_sums.cum_abc as double), {{ var('money_decimals') }})
            as net_revenue_365d

    from client_dates
    inner join prefix_sums
        on
            client_dates.client_id = prefix_sums.client_id
            and client_dates.as_of_date = prefix_sums.as_of_date

),

-- ABC on revenue: the clients of each date with positive revenue in the window, ranked
abc_ranked as (

    select
        as_of_date,
        client_id,
        row_number() over (partition by as_of_date order by net_revenue_365d desc, client_id asc) as revenue_rank,
        net_revenue_365d / sum(net_revenue_365d) over (partition by as_of_date) as revenue_share,
        sum(net_revenue_365d) over (
            partition by as_of_date order by net_revenue_365d desc, client_id asc
            rows between unbounded preceding and current row
        ) / sum(net_revenue_365d) over (partition by as_of_date) as cumulative_share,
        coalesce(sum(net_revenue_365d) over (
            partition by as_of_date order by net_revenue_365d desc, client_id asc
            rows between unbounded preceding and 1 preceding
        ), 0) / sum(net_revenue_365d) over (partition by as_of_date) as share_before

    from revenue_windows

    where net_revenue_365d > 0

),

final as (

    select
        revenue_windows.as_of_date,
        revenue_windows.client_id,
        revenue_windows.revenue_last_90d,
        revenue_windows.baseline_revenue_90d,
        case
            when revenue_windows.baseline_revenue_90d > 0
                then revenue_windows.revenue_last_90d / revenue_windows.baseline_revenue_90d - 1
        end as volume_change_ratio,
        -- a client without a completed order up to the date has no expected interval (and
        -- no positive baseline: never judged)
        {{ is_volume_judged('revenue_windows.baseline_revenue_90d', 'cadence_history.expected_interval_days') }}
            as is_volume_judged,
        {{ has_volume_drop(
            'revenue_windows.revenue_last_90d',
            'revenue_windows.baseline_revenue_90d',
            'cadence_history.expected_interval_days'
        ) }} as has_volume_drop,
        revenue_windows.revenue_recent_period,
        revenue_windows.revenue_prior_period,
        case
            when revenue_windows.is_run_date or revenue_windows.is_history_date
                then {{ is_growing('revenue_windows.revenue_recent_period', 'revenue_windows.revenue_prior_period') }}
        end as is_growing,
        revenue_windows.net_revenue_365d,
        abc_ranked.revenue_rank,
        abc_ranked.revenue_share,
        abc_ranked.cumulative_share,
        {{ abc_class('abc_ranked.share_before') }} as abc_class,
        revenue_windows.is_history_date,
        revenue_windows.is_backtest_date,
        revenue_windows.is_run_date

    from revenue_windows
    left join cadence_history
        on
            revenue_windows.as_of_date = cadence_history.as_of_date
            and revenue_windows.client_id = cadence_history.client_id
    left join abc_ranked
        on
            revenue_windows.as_of_date = abc_ranked.as_of_date
            and revenue_windows.client_id = abc_ranked.client_id

)

select * from final
