with

clients as (

    select * from {{ ref('dim_clients') }}

),

invoices as (

    select * from {{ ref('stg_erp__invoices') }}

),

invoices_in_window as (

    select
        client_id,
        invoice_id,
        case
            when paid_date is not null and paid_date <= {{ as_of_date() }}
                then {{ dbt.datediff('due_date', 'paid_date', 'day') }} > {{ var('payment_late_days') }}
            else {{ dbt.datediff('due_date', as_of_date(), 'day') }} > {{ var('payment_late_days') }}
        end as is_late

    from invoices

    where
        due_date between {{ as_of_date() }} - 364 and {{ as_of_date() }}
        and issued_date <= {{ as_of_date() }}

),

per_client as (

    select
        client_id,
        count(*) as invoices_365d,
        count(*) filter (where is_late) as late_invoices_365d

    from invoices_in_window

    group by client_id

),

final as (

    select
        clients.client_id,
        coalesce(per_client.invoices_365d, 0) as invoices_365d,
        coalesce(per_client.late_invoices_365d, 0) as late_invoices_365d,
        -- No invoice due in the window: cannot be judged (null), never "good payer".
        case
            when coalesce(per_client.invoices_365d, 0) > 0
                then
                    per_client.late_invoices_365d >= {{ var('payment_min_late_invoices') }}
                    and per_client.late_invoices_365d / per_client.invoices_365d
                    >= cast({{ var('payment_late_share') }} as double)
        end as has_poor_payment_discipline

    from clients
    left join per_client
        on clients.client_id = per_client.client_id

)

select * from final
