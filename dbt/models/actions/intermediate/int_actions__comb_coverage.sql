{#- The "comb" for each key client: which of the client's levels (director / head /
    specialist) we reach. A level is reached when a contact of that level, still with the
    client at D, had an interaction with us in the last comb_window_days (365). Null
    without CRM. -#}
{%- set crm_enabled = 'true' if has_crm() else 'false' -%}

with

key_clients as (

    select * from {{ ref('int_actions__key_clients') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}
    where {{ crm_enabled }}

),

interactions as (

    select * from {{ ref('stg_crm__interactions') }}
    where {{ crm_enabled }}

),

as_of as (

    select {{ as_of_date() }} as as_of_date

),

reached_contacts as (

    select distinct
        contacts.client_id,
        contacts.contact_id,
        contacts.level
    from contacts
    cross join as_of
    inner join interactions
        on
            contacts.contact_id = interactions.contact_id
            and contacts.client_id = interactions.client_id
    where
        (contacts.started_at is null or contacts.started_at <= as_of.as_of_date)
        and (contacts.left_at is null or contacts.left_at > as_of.as_of_date)
        and cast(interactions.occurred_at as date)
        between as_of.as_of_date - ({{ var('comb_window_days', 365) }} - 1) and as_of.as_of_date

),

per_client as (

    select
        client_id,
        count(*) as contacts_reached,
        bool_or(level = 'director') as has_director_reached,
        bool_or(level = 'head') as has_head_reached,
        bool_or(level = 'specialist') as has_specialist_reached
    from reached_contacts
    group by client_id

),

final as (

    select
        key_clients.client_id,
        key_clients.account_manager_id,
        case when {{ crm_enabled }} then coalesce(per_client.contacts_reached, 0) end as contacts_reached,
        case when {{ crm_enabled }} then coalesce(per_client.has_director_reached, false) end as has_director_reached,
        case when {{ crm_enabled }} then coalesce(per_client.has_head_reached, false) end as has_head_reached,
        case
            when {{ crm_enabled }} then coalesce(per_client.has_specialist_reached, false)
        end as has_specialist_reached
    from key_clients
    left join per_client on key_clients.client_id = per_client.client_id
    where key_clients.is_key_client

)

select
    client_id,
    account_manager_id,
    cast(contacts_reached as bigint) as contacts_reached,
    has_director_reached,
    has_head_reached,
    has_specialist_reached,
    cast(
        cast(has_director_reached as integer)
        + cast(has_head_reached as integer)
        + cast(has_specialist_reached as integer)
        as bigint
    ) as levels_covered
from final
