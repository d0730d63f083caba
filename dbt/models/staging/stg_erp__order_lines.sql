with

source as (

    select * from {{ source('erp', 'order_lines') }}

),

renamed as (

    select
        cast(trim(order_id) as string) as order_id,
        cast(line_no as bigint) as line_no,
        cast(trim(product_id) as string) as product_id,
        cast(quantity as double) as quantity,
        cast(unit_price as double) as unit_price,
        cast(unit_cost as double) as unit_cost,
        coalesce(cast(discount as double), 0) as discount

    from source

)

select * from renamed
