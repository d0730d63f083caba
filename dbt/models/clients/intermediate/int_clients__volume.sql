{{ config(materialized='view') }}

-- Volume drop at D (docs/rules.md "Volume"): D's rows of int_clients__revenue_windows (the
-- one implementation of the revenue windows and the rule) for every client; a client
-- without an order up to D has no revenue and is not judged. A view: it only reads D's rows,
-- and client_churn_signals is its one reader.

with

cadence as (

    select * from {{ ref('int_clients__cadence') }}

),

revenue_windows as (

    select * from {{ ref('int_clients__revenue_windows') }}

),

run_date_rows as (

    select * from revenue_windows

    where is_run_date

),

final as (

    select
        cadence.client_id,
        coalesce(run_date_rows.revenue_last_90d, 0) as revenue_last_90d,
        coalesce(run_date_rows.baseline_revenue_90d, 0) as baseline_revenue_90d,
        run_date_rows.volume_change_ratio,
        coalesce(run_date_rows.is_volume_judged, false) as is_volume_judged,
        run_date_rows.has_volume_drop

    from cadence
    left join run_date_rows
        on cadence.client_id = run_date_rows.client_id

)

select * from final
