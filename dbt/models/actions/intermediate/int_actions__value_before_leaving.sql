{#- Value of each churned client over the 365 days up to its own last order, ranked (ABC)
    among all clients' revenue on that same window. See docs/rules.md "Win-back".

    Cost grows with (distinct window ends x clients ordering around them), not with
    (churned clients x all order days): churned clients that share a last order date share one
    window, and a client's revenue on a window is a RANGE window sum over its own order days,
    read at a zero-valued probe row keyed on the day after the window end. The frame adds the
    window's days directly (no difference of running totals, so no rounding drift from a
    client's older history), and window sums use fsum (compensated, order-independent), so equal
    cent amounts tie exactly and the tie goes to client_id. The rank of a churned client is then
    counted against the other clients of its window only (no full sort of every window).
-#}

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

windows as (

    select distinct
        last_order_date as window_end,
        window_start
    from churned

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

client_spans as (

    select
        client_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from daily_revenue
    group by client_id

),

-- one probe per (window, client whose order days span reaches into the window); clients
-- outside have no order day in the window, hence no revenue there. A probe whose frame holds
-- no order day sums to 0: unranked (revenue not positive) and 0 for the client itself, as if absent
probes as (

    select
        client_spans.client_id,
        windows.window_end
    from windows
    inner join client_spans
        on
            windows.window_end >= client_spans.first_order_date
            and windows.window_start <= client_spans.last_order_date

),

-- order days keyed by day number; each probe sits on the day AFTER its window end, so the frame
-- "abc_window_days preceding .. 1 preceding" covers exactly window_start .. window_end
days_and_probes as (

    select
        client_id,
        cast({{ dbt.datediff("date '1970-01-01'", 'order_date', 'day') }} as bigint) as day_number,
        false as is_probe,
        cast(null as date) as window_end,
        net_revenue,
        margin
    from daily_revenue

    union all

    select
        client_id,
        cast(window_end - date '1970-01-01' as bigint) + 1 as day_number,
        true as is_probe,
        window_end,
        0 as net_revenue,
        0 as margin
    from probes

),

window_sums as (

    select
        client_id,
        window_end,
        is_probe,
        round({{ fsum('net_revenue', over='client_window') }}, {{ var('money_decimals') }}) as net_revenue,
        round({{ fsum('margin', over='client_window') }}, {{ var('money_decimals') }}) as margin
    from days_and_probes
    window client_window as (
        partition by client_id
        order by day_number
        range between {{ var('abc_window_days', 365) }} preceding and 1 preceding
    )

),

window_revenue as (

    select
        window_end,
        client_id,
        net_revenue,
        margin
    from window_sums
    where is_probe

),

own as (

    select
        churned.client_id,
        churned.last_order_date,
        churned.window_start,
        window_revenue.net_revenue,
        window_revenue.margin
    from churned
    left join window_revenue
        on
            churned.last_order_date = window_revenue.window_end
            and churned.client_id = window_revenue.client_id

),

-- rank of each churned client among the clients with positive revenue on its window:
-- the clients before it are those with more revenue, or as much and a smaller client_id
ranked as (

    select
        own.client_id,
        1 + count(
            case
                when
                    others.net_revenue > own.net_revenue
                    or (others.net_revenue = own.net_revenue and others.client_id < own.client_id)
                    then 1
            end
        ) as revenue_rank,
        count(*) as ranked_clients,
        coalesce(
            {{ fsum(
                'case
                    when
                        others.net_revenue > own.net_revenue
                        or (others.net_revenue = own.net_revenue and others.client_id < own.client_id)
                        then others.net_revenue
                end'
            ) }},
            0
        ) / {{ fsum('others.net_revenue') }} as cumulative_share_before
    from own
    inner join window_revenue as others
        on own.last_order_date = others.window_end
    where own.net_revenue > 0 and others.net_revenue > 0
    group by own.client_id

),

final as (

    select
        own.client_id,
        own.last_order_date,
        own.window_start,
        coalesce(own.net_revenue, 0) as value_before_leaving,
        coalesce(own.margin, 0) as margin_before_leaving,
        own_rank.revenue_rank as rank_before_leaving,
        own_rank.ranked_clients as ranked_clients_before_leaving,
        own_rank.cumulative_share_before,
        case
            when own_rank.revenue_rank is not null
                then {{ abc_class('own_rank.cumulative_share_before') }}
        end as value_class_before_leaving
    from own
    left join ranked as own_rank
        on own.client_id = own_rank.client_id

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
