with

orders as (

    select * from {{ ref('fct_orders') }}

),

cadence as (

    select * from {{ ref('int_clients__cadence') }}

),

windows as (

    select
        client_id,
        {{ money_sum("case when order_date >= " ~ as_of_date() ~ " - 89 then net_revenue else 0 end") }}
            as revenue_last_90d,
        {{ money_sum("case when order_date < " ~ as_of_date() ~ " - 89 then net_revenue else 0 end") }}
            as revenue_prior_270d

    from orders

    where order_date between {{ as_of_date() }} - 359 and {{ as_of_date() }}

    group by client_id

),

baseline as (

    select
        cadence.client_id,
        cadence.expected_interval_days,
        cast(coalesce(windows.revenue_last_90d, 0) as double) as revenue_last_90d,
        cast(coalesce(windows.revenue_prior_270d, 0) as double) / 3.0 as baseline_revenue_90d

    from cadence
    left join windows
        on cadence.client_id = windows.client_id

),

final as (

    select
        client_id,
        revenue_last_90d,
        baseline_revenue_90d,
        case
            when baseline_revenue_90d > 0 then revenue_last_90d / baseline_revenue_90d - 1
        end as volume_change_ratio,
        {{ is_volume_judged('baseline_revenue_90d', 'expected_interval_days') }} as is_volume_judged,
        {{ has_volume_drop('revenue_last_90d', 'baseline_revenue_90d', 'expected_interval_days') }} as has_volume_drop

    from baseline

)

select * from final
