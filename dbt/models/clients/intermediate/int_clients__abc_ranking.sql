-- ABC at D (docs/rules.md "ABC"): the ranking on revenue is D's rows of
-- int_clients__revenue_windows (the one implementation of it, also used on the history
-- dates); what only D publishes is computed here: the orders and the margin of the
-- abc_window_days to D, and the ranking on margin (the same abc_class macro).

with

clients as (

    select * from {{ ref('dim_clients') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

revenue_windows as (

    select * from {{ ref('int_clients__revenue_windows') }}

    where is_run_date

),

window_totals as (

    select
        client_id,
        count(*) as orders_in_window,
        cast({{ money_sum("margin") }} as double) as margin_365d

    from orders

    where order_date between {{ as_of_date() }} - ({{ var('abc_window_days') }} - 1) and {{ as_of_date() }}

    group by client_id

),

client_totals as (

    select
        clients.client_id,
        coalesce(window_totals.orders_in_window, 0) as orders_in_window,
        coalesce(revenue_windows.net_revenue_365d, 0) as net_revenue_365d,
        coalesce(window_totals.margin_365d, 0) as margin_365d,
        revenue_windows.revenue_rank,
        revenue_windows.revenue_share,
        revenue_windows.cumulative_share,
        revenue_windows.abc_class

    from clients
    left join window_totals
        on clients.client_id = window_totals.client_id
    left join revenue_windows
        on clients.client_id = revenue_windows.client_id

),

margin_ranked as (

    select
        client_id,
        row_number() over (order by margin_365d desc, client_id asc) as margin_rank,
        sum(margin_365d) over (
            order by margin_365d desc, client_id asc
            rows between unbounded preceding and current row
        ) / sum(margin_365d) over () as cumulative_margin_share,
        coalesce(sum(margin_365d) over (
            order by margin_365d desc, client_id asc
            rows between unbounded preceding and 1 preceding
        ), 0) / sum(margin_365d) over () as margin_share_before

    from client_totals

    where margin_365d > 0

),

final as (

    select
        client_totals.client_id,
        client_totals.orders_in_window,
        client_totals.net_revenue_365d,
        client_totals.margin_365d,
        client_totals.revenue_rank,
        client_totals.revenue_share,
        client_totals.cumulative_share,
        client_totals.abc_class,
        client_totals.revenue_rank is not null as is_ranked,
        case
            when client_totals.revenue_rank is not null then null
            when client_totals.orders_in_window = 0 then 'no orders in the window'
            else 'net revenue in the window is not positive'
        end as unranked_reason,
        margin_ranked.margin_rank,
        margin_ranked.cumulative_margin_share,
        {{ abc_class('margin_ranked.margin_share_before') }} as abc_class_margin

    from client_totals
    left join margin_ranked
        on client_totals.client_id = margin_ranked.client_id

)

select * from final
