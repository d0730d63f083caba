{#- Every client with its key-client flag: A by revenue (client_abc) or declared
    KA / key tier in the ERP. -#}

with

clients as (

    select * from {{ ref('dim_clients') }}

),

abc as (

    select * from {{ ref('client_abc') }}

),

final as (

    select
        clients.client_id,
        clients.client_name,
        clients.account_manager_id,
        clients.declared_tier,
        abc.abc_class,
        coalesce(abc.net_revenue_365d, 0) as net_revenue_365d,
        coalesce(abc.margin_365d, 0) as margin_365d,
        coalesce(abc.abc_class = 'A', false) as is_a_client,
        coalesce(clients.declared_tier in ('KA', 'key'), false) as is_declared_key,
        case
            when abc.abc_class = 'A' and clients.declared_tier in ('KA', 'key') then 'abc_a_and_declared_tier'
            when abc.abc_class = 'A' then 'abc_a'
            when clients.declared_tier in ('KA', 'key') then 'declared_tier'
        end as key_reason
    from clients
    left join abc on clients.client_id = abc.client_id

)

select
    client_id,
    client_name,
    account_manager_id,
    declared_tier,
    abc_class,
    cast(net_revenue_365d as double) as net_revenue_365d,
    cast(margin_365d as double) as margin_365d,
    is_a_client,
    is_declared_key,
    (is_a_client or is_declared_key) as is_key_client,
    key_reason
from final
