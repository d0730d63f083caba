with

source as (

    select * from {{ source('crm', 'contacts') }}

),

renamed as (

    select
        cast(trim(contact_id) as string) as contact_id,
        cast(trim(client_id) as string) as client_id,
        cast(trim(full_name) as string) as full_name,
        cast(trim(position) as string) as position,
        cast(trim(level) as string) as level,
        cast(is_decision_maker as boolean) as is_decision_maker,
        cast(started_at as date) as started_at,
        cast(left_at as date) as left_at,
        cast(updated_at as timestamp) as updated_at

    from source

)

select * from renamed
