with

source as (

    select * from {{ source('erp', 'clients') }}

),

renamed as (

    select
        cast(trim(client_id) as string) as client_id,
        cast(trim(client_name) as string) as client_name,
        cast(trim(segment) as string) as segment,
        cast(trim(region) as string) as region,
        cast(trim(industry) as string) as industry,
        cast(trim(account_manager_id) as string) as account_manager_id,
        cast(trim(declared_tier) as string) as declared_tier,
        cast(payment_terms_days as bigint) as payment_terms_days,
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at

    from source

)

select * from renamed
