with

source as (

    select * from {{ source('crm', 'interactions') }}

),

renamed as (

    select
        cast(trim(interaction_id) as string) as interaction_id,
        cast(trim(client_id) as string) as client_id,
        cast(trim(contact_id) as string) as contact_id,
        cast(trim(manager_id) as string) as manager_id,
        cast(occurred_at as timestamp) as occurred_at,
        cast(trim(channel) as string) as channel,
        cast(trim(kind) as string) as kind,
        cast(satisfaction as bigint) as satisfaction,
        cast(resolved_at as timestamp) as resolved_at,
        cast(updated_at as timestamp) as updated_at

    from source

)

select * from renamed
