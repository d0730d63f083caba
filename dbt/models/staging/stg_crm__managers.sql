with

source as (

    select * from {{ source('crm', 'managers') }}

),

renamed as (

    select
        cast(trim(manager_id) as varchar) as manager_id,
        cast(trim(manager_name) as varchar) as manager_name,
        cast(trim(level) as varchar) as level,
        cast(trim(team) as varchar) as team,
        cast(hired_at as date) as hired_at,
        cast(left_at as date) as left_at

    from source

)

select * from renamed
