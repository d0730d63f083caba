with

source as (

    select * from {{ source('erp', 'orders') }}

),

renamed as (

    select
        cast(trim(order_id) as string) as order_id,
        cast(trim(client_id) as string) as client_id,
        cast(order_date as date) as order_date,
        cast(trim(status) as string) as status,
        cast(updated_at as timestamp) as updated_at

    from source

)

select * from renamed
