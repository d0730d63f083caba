with

source as (

    select * from {{ source('crm', 'managers') }}

),

renamed as (

    select
        cast(trim(manager_id) as string) as manager_id,
        cast(trim(manager_name) as string) as manager_name,
        cast(trim(level) as string) as level,
        cast(trim(team) as string) as team,
        cast(hired_at as date) as hired_at,
        cast(left_at as date) as left_at

    from source

)

select * from renamed
