with

source as (

    select * from {{ source('erp', 'invoices') }}

),

renamed as (

    select
        cast(trim(invoice_id) as string) as invoice_id,
        cast(trim(client_id) as string) as client_id,
        cast(trim(order_id) as string) as order_id,
        cast(issued_date as date) as issued_date,
        cast(due_date as date) as due_date,
        cast(amount as double) as amount,
        cast(paid_date as date) as paid_date,
        cast(updated_at as timestamp) as updated_at

    from source

)

select * from renamed
