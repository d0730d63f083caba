-- The date spine of the client-day models: one row per as-of date to compute in this run.
-- D itself (is_run_date: the daily models read its rows). History dates are the days of
-- the window [D - (history_days - 1), D) that marts.client_status_history lacks (all of
-- them on a first build, the missed days after a gap), plus every day of the window from a
-- backfill's rebuild_from. Backtest dates (D - k x backtest_every_days, k >= 1, in the
-- window) are in the spine on every run.

with

built_dates as (

    select * from {{ ref('int_clients__history_dates_built') }}

),

window_dates as (

    select days.day as as_of_date

    from ({{ date_series(history_start_date(), as_of_date() ~ ' - 1') }}) as days

),

flagged as (

    select
        window_dates.as_of_date,
        (
            built_dates.as_of_date is null
            or window_dates.as_of_date >= {{ rebuild_from_date() }}
        ) as is_history_date,
        {{ dbt.datediff('window_dates.as_of_date', as_of_date(), 'day') }}
        % {{ var('backtest_every_days') }} = 0 as is_backtest_date,
        false as is_run_date

    from window_dates
    left join built_dates
        on window_dates.as_of_date = built_dates.as_of_date

),

run_date as (

    select
        {{ as_of_date() }} as as_of_date,
        false as is_history_date,
        false as is_backtest_date,
        true as is_run_date

),

final as (

    select
        as_of_date,
        is_history_date,
        is_backtest_date,
        is_run_date

    from flagged

    where is_history_date or is_backtest_date

    union all

    select
        as_of_date,
        is_history_date,
        is_backtest_date,
        is_run_date

    from run_date

)

select * from final
