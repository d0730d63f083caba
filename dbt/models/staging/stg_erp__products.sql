with

source as (

    select * from {{ source('erp', 'products') }}

),

renamed as (

    select
        cast(trim(product_id) as string) as product_id,
        cast(trim(product_name) as string) as product_name,
        cast(trim(category) as string) as category,
        cast(updated_at as timestamp) as updated_at

    from source

)

select * from renamed
