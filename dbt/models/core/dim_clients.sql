with

clients as (

    select * from {{ ref('stg_erp__clients') }}

),

managers as (

    select * from {{ ref('stg_crm__managers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

client_orders as (

    select
        client_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(*) as order_count

    from orders

    where is_revenue_bearing

    group by client_id

),

final as (

    select
        clients.client_id,
        clients.client_name,
        clients.segment,
        clients.region,
        clients.industry,
        clients.account_manager_id,
        managers.manager_name as account_manager_name,
        managers.team as manager_team,
        clients.declared_tier,
        clients.payment_terms_days,
        clients.created_at,
        client_orders.first_order_date,
        client_orders.last_order_date,
        coalesce(client_orders.order_count, 0) as order_count

    from clients

    left join managers
        on clients.account_manager_id = managers.manager_id

    left join client_orders
        on clients.client_id = client_orders.client_id

)

select * from final
