{#- Value of each churned client over the 365 days up to its own last order, ranked (ABC)
    among all clients' revenue on that same window. See docs/rules.md "Win-back". -#}

with

churn_signals as (

    select * from {{ ref('client_churn_signals') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

churned as (

    select
        client_id,
        last_order_date,
        cast(last_order_date - ({{ var('abc_window_days', 365) }} - 1) as date) as window_start
    from churn_signals
    where is_churned and last_order_date is not null

),

daily_revenue as (

    select
        client_id,
        order_date,
        sum(net_revenue) as net_revenue,
        sum(margin) as margin
    from orders
    group by client_id, order_date

),

window_revenue as (

    select
        churned.client_id as churned_client_id,
        daily_revenue.client_id,
        sum(daily_revenue.net_revenue) as net_revenue,
        sum(daily_revenue.margin) as margin
    from churned
    inner join daily_revenue
        on daily_revenue.order_date between churned.window_start and churned.last_order_date
    group by churned.client_id, daily_revenue.client_id

),

ranked as (

    select
        churned_client_id,
        client_id,
        row_number() over (
            partition by churned_client_id order by net_revenue desc, client_id asc
        ) as revenue_rank,
        count(*) over (partition by churned_client_id) as ranked_clients,
        coalesce(
            sum(net_revenue) over (
                partition by churned_client_id
                order by net_revenue desc, client_id asc
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) / sum(net_revenue) over (partition by churned_client_id) as cumulative_share_before
    from window_revenue
    where net_revenue > 0

),

final as (

    select
        churned.client_id,
        churned.last_order_date,
        churned.window_start,
        coalesce(own.net_revenue, 0) as value_before_leaving,
        coalesce(own.margin, 0) as margin_before_leaving,
        own_rank.revenue_rank as rank_before_leaving,
        own_rank.ranked_clients as ranked_clients_before_leaving,
        own_rank.cumulative_share_before,
        case
            when own_rank.revenue_rank is null then null
            when own_rank.cumulative_share_before < {{ var('abc_a_threshold', 0.80) }} then 'A'
            when own_rank.cumulative_share_before < {{ var('abc_b_threshold', 0.95) }} then 'B'
            else 'C'
        end as value_class_before_leaving
    from churned
    left join window_revenue as own
        on
            churned.client_id = own.churned_client_id
            and churned.client_id = own.client_id
    left join ranked as own_rank
        on
            churned.client_id = own_rank.churned_client_id
            and churned.client_id = own_rank.client_id

)

select
    client_id,
    last_order_date,
    window_start,
    cast(value_before_leaving as double) as value_before_leaving,
    cast(margin_before_leaving as double) as margin_before_leaving,
    cast(rank_before_leaving as bigint) as rank_before_leaving,
    cast(ranked_clients_before_leaving as bigint) as ranked_clients_before_leaving,
    cast(cumulative_share_before as double) as cumulative_share_before,
    value_class_before_leaving,
    coalesce(margin_before_leaving > 0, false) as is_profitable_before_leaving,
    coalesce(value_class_before_leaving in ('A', 'B') and margin_before_leaving > 0, false)
        as is_winback_eligible
from final
