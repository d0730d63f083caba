{#- Every manager (CRM managers, plus account managers named in the ERP) with the load
    used by the win-back assignment: clients and A clients in their portfolio.
    Without CRM the managers are the ERP's account_manager_id values: no name, level or
    team (the ERP contract has no manager name column), and active (the ERP has no hire /
    leave dates; a manager who holds clients is taken as still working). -#}
{%- set crm_enabled = 'true' if has_crm() else 'false' -%}

with

crm_managers as (

    select * from {{ ref('stg_crm__managers') }}
    where {{ crm_enabled }}

),

clients as (

    select * from {{ ref('dim_clients') }}

),

abc as (

    select * from {{ ref('client_abc') }}

),

as_of as (

    select {{ as_of_date() }} as as_of_date

),

portfolio as (

    select
        clients.account_manager_id as manager_id,
        count(*) as client_count,
        count(*) filter (where abc.abc_class = 'A') as a_client_count
    from clients
    left join abc on clients.client_id = abc.client_id
    where clients.account_manager_id is not null
    group by clients.account_manager_id

),

manager_ids as (

    select manager_id from crm_managers
    union
    select manager_id from portfolio

),

final as (

    select
        manager_ids.manager_id,
        crm_managers.manager_name,
        crm_managers.level,
        crm_managers.team,
        crm_managers.manager_id is not null as is_in_crm,
        case
            when crm_managers.manager_id is not null
                then
                    (crm_managers.hired_at is null or crm_managers.hired_at <= as_of.as_of_date)
                    and (crm_managers.left_at is null or crm_managers.left_at > as_of.as_of_date)
            when not {{ crm_enabled }} then true
        end as is_active,
        coalesce(portfolio.client_count, 0) as client_count,
        coalesce(portfolio.a_client_count, 0) as a_client_count
    from manager_ids
    cross join as_of
    left join crm_managers on manager_ids.manager_id = crm_managers.manager_id
    left join portfolio on manager_ids.manager_id = portfolio.manager_id

)

select
    manager_id,
    manager_name,
    level,
    team,
    is_in_crm,
    cast(is_active as boolean) as is_active,
    cast(client_count as bigint) as client_count,
    cast(a_client_count as bigint) as a_client_count
from final
