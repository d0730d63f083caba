-- The churn score's inputs (docs/rules.md "Churn score"): one row per (as-of date, client
-- with a completed order up to it) for the backtest dates before D (the past cases, with
-- the client's next order day up to D for their outcome) and for D itself (the clients to
-- score, no next order). Everything is read from orders up to D (fct_orders and
-- int_clients__order_day_states stop at D), and each row only from order days up to its own
-- date (ASOF joins), so nothing after a row's date enters its features.
-- Beyond churn_score_max_cases past cases, only a fixed hash sample of ~1.2 x that many is
-- built (20,000 clients x 3 years: ~2M past cases, of which the score reads 100,000).
-- Its windows (completed orders only, as doubles, over 90 / 180 / 365 days) are not
-- int_clients__revenue_windows' (net of returns, exact sums, 90 / 360 / 365): read from
-- there (as completed_* columns of it, branch i19-windows-completed-windows, 2026-12-07)
-- the features and the model's output were identical bit for bit, but the model then waits
-- for revenue_windows instead of running beside it, and revenue_windows computes them for
-- every client of every backtest date instead of this sample: at 20,000 clients, daily-run
-- spine, these nodes took 18.6-22.4 s instead of 14.3-14.6 s (docs/benchmarks.md, log).

with

cadence_history as (

    select * from {{ ref('int_clients__cadence_history') }}

),

cadence as (

    select * from {{ ref('int_clients__cadence') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

past_dates as (

    select
        as_of_date,
        client_id,
        segment,
        first_order_date,
        last_order_date,
        last_gap_days,
        distinct_order_days,
        expected_interval_days,
        days_since_last_order,
        overdue_ratio,
        next_order_date

    from cadence_history

    where
        is_backtest_date
        and as_of_date < {{ as_of_date() }}

),

-- the sample before the joins below, so the features are built only for the cases the
-- score reads (pipelines.score then cuts them to churn_score_max_cases exactly); all cases
-- up to 1.2 x churn_score_max_cases
client_dates as (

    select past_dates.*

    from past_dates

    where
        {{ hash_bucket("client_id || '|' || cast(as_of_date as string)") }}
        < floor(
            1000000 * least(
                cast(1 as double),
                cast(1.2 as double) * {{ var('churn_score_max_cases') }}
                / (select count(counted.as_of_date) from past_dates as counted)
            )
        )

    union all

    select
        {{ as_of_date() }} as as_of_date,
        client_id,
        segment,
        first_order_date,
        last_order_date,
        last_gap_days,
        distinct_order_days,
        expected_interval_days,
        days_since_last_order,
        overdue_ratio,
        cast(null as date) as next_order_date

    from cadence

    where last_order_date is not null

),

day_revenue as (

    select
        client_id,
        order_date as order_day,
        sum(cast(net_revenue as double)) as revenue

    from orders

    where status = 'completed'

    group by client_id, order_date

),

-- running values per client and order day, read at any date by an ASOF join (asof_left_join)
day_states as (

    select
        client_id,
        order_day,
        sum(revenue) over to_date as revenue_to_date,
        count(*) over to_date as order_days_to_date,
        first_value(revenue) over to_date as first_order_revenue,
        max(gap_days) over to_date as longest_gap_days,
        lead(order_day) over (partition by client_id order by order_day) as next_order_day

    from (
        select
            *,
            {{ dbt.datediff('(lag(order_day) over (partition by client_id order by order_day))', 'order_day', 'day') }} as gap_days
        from day_revenue
    ) as gaps

    window to_date as (
        partition by client_id order by order_day
        rows between unbounded preceding and current row
    )

),

at_dates as (

    select
        client_dates.*,
        now_state.revenue_to_date,
        now_state.first_order_revenue,
        now_state.longest_gap_days,
        now_state.order_days_to_date,
        coalesce(state_90.order_days_to_date, 0) as order_days_to_90d_before,
        coalesce(state_180.order_days_to_date, 0) as order_days_to_180d_before,
        coalesce(state_90.revenue_to_date, 0) as revenue_to_90d_before,
        coalesce(state_180.revenue_to_date, 0) as revenue_to_180d_before,
        coalesce(state_365.revenue_to_date, 0) as revenue_to_365d_before

    from client_dates
    {{ asof_left_join(
        'day_states as now_state',
        'client_dates.client_id = now_state.client_id',
        'client_dates.as_of_date',
        'now_state.order_day',
        'now_state.next_order_day'
    ) }}
    {{ asof_left_join(
        'day_states as state_90',
        'client_dates.client_id = state_90.client_id',
        'client_dates.as_of_date - 90',
        'state_90.order_day',
        'state_90.next_order_day'
    ) }}
    {{ asof_left_join(
        'day_states as state_180',
        'client_dates.client_id = state_180.client_id',
        'client_dates.as_of_date - 180',
        'state_180.order_day',
        'state_180.next_order_day'
    ) }}
    {{ asof_left_join(
        'day_states as state_365',
        'client_dates.client_id = state_365.client_id',
        'client_dates.as_of_date - 365',
        'state_365.order_day',
        'state_365.next_order_day'
    ) }}

),

final as (

    select
        as_of_date,
        client_id,
        cast(segment as string) as segment,
        cast(days_since_last_order as integer) as days_since_last_order,
        cast(distinct_order_days as integer) as distinct_order_days,
        {{ dbt.datediff('first_order_date', 'as_of_date', 'day') }} as tenure_days,
        case
            when distinct_order_days > 1
                then {{ dbt.datediff('first_order_date', 'last_order_date', 'day') }} / (distinct_order_days - 1)
        end as mean_gap_days,
        cast(last_gap_days as double) as last_gap_days,
        cast(longest_gap_days as double) as longest_gap_days,
        cast(expected_interval_days as double) as expected_interval_days,
        cast(overdue_ratio as double) as overdue_ratio,
        revenue_to_date - revenue_to_90d_before as revenue_90d,
        revenue_to_90d_before - revenue_to_180d_before as revenue_prior_90d,
        revenue_to_date - revenue_to_365d_before as revenue_365d,
        cast(order_days_to_date - order_days_to_90d_before as integer) as order_days_90d,
        cast(order_days_to_date - order_days_to_180d_before as integer) as order_days_180d,
        revenue_to_date,
        first_order_revenue,
        next_order_date

    from at_dates

)

select * from final
