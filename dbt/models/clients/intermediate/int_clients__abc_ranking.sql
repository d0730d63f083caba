with

clients as (

    select * from {{ ref('dim_clients') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

window_totals as (

    select
        client_id,
        count(*) as orders_in_window,
        cast({{ money_sum("net_revenue") }} as double) as net_revenue_365d,
        cast({{ money_sum("margin") }} as double) as margin_365d

    from orders

    where order_date between {{ as_of_date() }} - ({{ var('abc_window_days') }} - 1) and {{ as_of_date() }}

    group by client_id

),

client_totals as (

    select
        clients.client_id,
        coalesce(window_totals.orders_in_window, 0) as orders_in_window,
        coalesce(window_totals.net_revenue_365d, 0) as net_revenue_365d,
        coalesce(window_totals.margin_365d, 0) as margin_365d

    from clients
    left join window_totals
        on clients.client_id = window_totals.client_id

),

revenue_ranked as (

    select
        client_id,
        row_number() over (order by net_revenue_365d desc, client_id asc) as revenue_rank,
        net_revenue_365d / sum(net_revenue_365d) over () as revenue_share,
        sum(net_revenue_365d) over (
            order by net_revenue_365d desc, client_id asc
            rows between unbounded preceding and current row
        ) / sum(net_revenue_365d) over () as cumulative_share,
        coalesce(sum(net_revenue_365d) over (
            order by net_revenue_365d desc, client_id asc
            rows between unbounded preceding and 1 preceding
        ), 0) / sum(net_revenue_365d) over () as share_before

    from client_totals

    where net_revenue_365d > 0

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
        revenue_ranked.revenue_rank,
        revenue_ranked.revenue_share,
        revenue_ranked.cumulative_share,
        {{ abc_class('revenue_ranked.share_before') }} as abc_class,
        revenue_ranked.client_id is not null as is_ranked,
        case
            when revenue_ranked.client_id is not null then null
            when client_totals.orders_in_window = 0 then 'no orders in the window'
            else 'net revenue in the window is not positive'
        end as unranked_reason,
        margin_ranked.margin_rank,
        margin_ranked.cumulative_margin_share,
        {{ abc_class('margin_ranked.margin_share_before') }} as abc_class_margin

    from client_totals
    left join revenue_ranked
        on client_totals.client_id = revenue_ranked.client_id
    left join margin_ranked
        on client_totals.client_id = margin_ranked.client_id

)

select * from final
