with

orders as (

    select * from {{ ref('fct_orders') }}

),

month_offsets as (

    select offsets.month_offset

    from (
        values {% for offset in range(12) %}({{ offset }}){{ ', ' if not loop.last }}{% endfor %}
    ) as offsets (month_offset)

),

months as (

    select cast({{ dbt.dateadd('month', '-month_offset', dbt.date_trunc('month', as_of_date())) }} as date) as month_start

    from month_offsets

),

orders_in_window as (

    select
        client_id,
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as month_start,
        net_revenue

    from orders

    where
        order_date >= (select min(months.month_start) from months)
        and order_date <= {{ as_of_date() }}

),

window_clients as (

    select distinct client_id

    from orders_in_window

),

monthly_revenue as (

    select
        client_id,
        month_start,
        {{ money_sum("net_revenue") }} as net_revenue

    from orders_in_window

    group by client_id, month_start

),

client_months as (

    select
        window_clients.client_id,
        months.month_start,
        cast(coalesce(monthly_revenue.net_revenue, 0) as double) as net_revenue

    from window_clients
    cross join months
    left join monthly_revenue
        on
            window_clients.client_id = monthly_revenue.client_id
            and months.month_start = monthly_revenue.month_start

),

stats as (

    select
        client_id,
        avg(net_revenue) as mean_monthly_revenue,
        stddev_pop(net_revenue) as stddev_monthly_revenue

    from client_months

    group by client_id

),

final as (

    select
        client_id,
        mean_monthly_revenue,
        stddev_monthly_revenue,
        case
            when mean_monthly_revenue > 0 then stddev_monthly_revenue / mean_monthly_revenue
        end as xyz_cv,
        case
            when mean_monthly_revenue <= 0 then null
            when stddev_monthly_revenue / mean_monthly_revenue <= cast({{ var('xyz_x_max_cv') }} as double) then 'X'
            when stddev_monthly_revenue / mean_monthly_revenue <= cast({{ var('xyz_y_max_cv') }} as double) then 'Y'
            else 'Z'
        end as xyz_class

    from stats

)

select * from final
