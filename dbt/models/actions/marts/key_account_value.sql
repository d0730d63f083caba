{#- Value exchange per key client: what we receive (revenue, margin, growth) against what
    we give (discounts, service, complaints handled, time). CRM-based columns are null
    without CRM. -#}
{%- set crm_enabled = 'true' if has_crm() else 'false' -%}

with

key_clients as (

    select * from {{ ref('int_actions__key_clients') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

interactions as (

    select * from {{ ref('stg_crm__interactions') }}
    where {{ crm_enabled }}

),

as_of as (

    select {{ as_of_date() }} as as_of_date

),

received as (

    select
        orders.client_id,
        -- exact sums (decimal, then double): a double sum differs in its last bits run to run, and
        -- margin_per_interaction published 3246.18 one run and 3246.17 the next
        cast(
            sum(cast(orders.net_revenue as decimal(38, 10)))
            filter (where orders.order_date > as_of.as_of_date - 365) as double
        ) as revenue_365d,
        cast(
            sum(cast(orders.margin as decimal(38, 10)))
            filter (where orders.order_date > as_of.as_of_date - 365) as double
        ) as margin_365d,
        round(
            {{ fsum('orders.net_revenue', where='orders.order_date <= as_of.as_of_date - 365') }},
            {{ var('money_decimals') }}
        ) as revenue_prev_365d,
        cast(
            sum(cast(orders.gross_revenue as decimal(38, 10))) filter (
                where orders.order_date > as_of.as_of_date - 365 and orders.status = 'completed'
            ) as double
        ) as gross_revenue_365d,
        sum(orders.discount_amount) filter (
            where orders.order_date > as_of.as_of_date - 365 and orders.status = 'completed'
        ) as discounts_365d
    from orders
    cross join as_of
    where orders.order_date between as_of.as_of_date - 729 and as_of.as_of_date
    group by orders.client_id

),

given as (

    select
        interactions.client_id,
        count(*) as interactions_365d,
        count(*) filter (where interactions.channel in ('meeting', 'visit')) as meetings_365d,
        count(*) filter (where interactions.kind = 'service') as service_interactions_365d,
        count(*) filter (where interactions.kind = 'complaint') as complaints_365d,
        count(*) filter (
            where
            interactions.kind = 'complaint'
            and interactions.resolved_at is not null
            and cast(interactions.resolved_at as date) <= as_of.as_of_date
        ) as complaints_resolved_365d
    from interactions
    cross join as_of
    where cast(interactions.occurred_at as date) between as_of.as_of_date - 364 and as_of.as_of_date
    group by interactions.client_id

),

final as (

    select
        key_clients.client_id,
        key_clients.client_name,
        key_clients.account_manager_id,
        key_clients.declared_tier,
        key_clients.abc_class,
        key_clients.key_reason,
        as_of.as_of_date,
        coalesce(received.revenue_365d, 0) as revenue_365d,
        coalesce(received.margin_365d, 0) as margin_365d,
        coalesce(received.revenue_prev_365d, 0) as revenue_prev_365d,
        case
            when received.revenue_prev_365d > 0
                then coalesce(received.revenue_365d, 0) / received.revenue_prev_365d - 1
        end as revenue_growth_share,
        coalesce(received.discounts_365d, 0) as discounts_365d,
        coalesce(received.discounts_365d, 0) / nullif(received.gross_revenue_365d, 0) as discount_share,
        case when {{ crm_enabled }} then coalesce(given.interactions_365d, 0) end as interactions_365d,
        case when {{ crm_enabled }} then coalesce(given.meetings_365d, 0) end as meetings_365d,
        case
            when {{ crm_enabled }} then coalesce(given.service_interactions_365d, 0)
        end as service_interactions_365d,
        case when {{ crm_enabled }} then coalesce(given.complaints_365d, 0) end as complaints_365d,
        case
            when {{ crm_enabled }} then coalesce(given.complaints_resolved_365d, 0)
        end as complaints_resolved_365d,
        case
            when {{ crm_enabled }} then coalesce(received.margin_365d, 0) / nullif(given.interactions_365d, 0)
        end as margin_per_interaction
    from key_clients
    cross join as_of
    left join received on key_clients.client_id = received.client_id
    left join given on key_clients.client_id = given.client_id
    where key_clients.is_key_client

)

select
    cast(client_id as string) as client_id,
    cast(client_name as string) as client_name,
    cast(account_manager_id as string) as account_manager_id,
    cast(declared_tier as string) as declared_tier,
    cast(abc_class as string) as abc_class,
    cast(key_reason as string) as key_reason,
    cast(as_of_date as date) as as_of_date,
    {{ to_money('revenue_365d') }} as revenue_365d,
    {{ to_money('margin_365d') }} as margin_365d,
    {{ to_money('revenue_prev_365d') }} as revenue_prev_365d,
    cast(revenue_growth_share as double) as revenue_growth_share,
    {{ to_money('discounts_365d') }} as discounts_365d,
    cast(discount_share as double) as discount_share,
    cast(interactions_365d as bigint) as interactions_365d,
    cast(meetings_365d as bigint) as meetings_365d,
    cast(service_interactions_365d as bigint) as service_interactions_365d,
    cast(complaints_365d as bigint) as complaints_365d,
    cast(complaints_resolved_365d as bigint) as complaints_resolved_365d,
    {{ to_money('margin_per_interaction') }} as margin_per_interaction
from final
