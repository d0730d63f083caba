-- One row per client and distinct completed order day up to D, with the state of the
-- client's cadence on that day: the history models as-of join it per spine date (the
-- median of the gaps only changes on order days, so it is computed once per order day).

with

orders as (

    select * from {{ ref('fct_orders') }}

),

distinct_order_days as (

    select distinct
        client_id,
        order_date as order_day

    from orders

    where
        status = 'completed'
        and order_date <= {{ as_of_date() }}

),

neighbours as (

    select
        client_id,
        order_day,
        lag(order_day) over by_day as previous_order_day,
        lead(order_day) over by_day as next_order_day,
        {{ dbt.datediff('(lag(order_day) over by_day)', 'order_day', 'day') }} as gap_days,
        row_number() over by_day as order_days_to_date

    from distinct_order_days

    window by_day as (partition by client_id order by order_day)

),

final as (

    select
        client_id,
        order_day,
        previous_order_day,
        next_order_day,
        gap_days,
        order_days_to_date,
        -- the same median as int_clients__cadence's, over the gaps up to this day
        {{ running_median('gap_days', 'client_id', 'order_day') }} as median_gap_to_date

    from neighbours

)

select * from final
