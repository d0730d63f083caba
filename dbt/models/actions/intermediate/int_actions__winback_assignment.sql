{#- Suggested manager for each win-back-eligible client (docs/rules.md "Win-back"):
    an active manager, never the one who lost the client; same team first, then the
    fewest A clients, ties by manager_id. Null when no manager qualifies. Without CRM
    there are no teams: the fewest A clients among the other ERP account managers, and
    is_same_team_suggestion is null (cannot be judged). -#}
{%- set crm_enabled = 'true' if has_crm() else 'false' -%}

with

value_before_leaving as (

    select * from {{ ref('int_actions__value_before_leaving') }}

),

clients as (

    select * from {{ ref('dim_clients') }}

),

managers as (

    select * from {{ ref('int_actions__managers') }}

),

candidates as (

    select
        value_before_leaving.client_id,
        clients.account_manager_id as lost_by_manager_id,
        lost_by.team as lost_by_team
    from value_before_leaving
    inner join clients on value_before_leaving.client_id = clients.client_id
    left join managers as lost_by on clients.account_manager_id = lost_by.manager_id
    where value_before_leaving.is_winback_eligible

),

options as (

    select
        candidates.client_id,
        managers.manager_id,
        managers.team,
        case
            when {{ crm_enabled }} then coalesce(managers.team = candidates.lost_by_team, false)
        end as is_same_team,
        row_number() over (
            partition by candidates.client_id
            order by
                case when managers.team = candidates.lost_by_team then 0 else 1 end,
                managers.a_client_count,
                managers.manager_id
        ) as preference
    from candidates
    inner join managers
        on
            managers.is_active
            and managers.manager_id is distinct from candidates.lost_by_manager_id

),

final as (

    select
        candidates.client_id,
        candidates.lost_by_manager_id,
        candidates.lost_by_team,
        options.manager_id as suggested_manager_id,
        options.team as suggested_manager_team,
        options.is_same_team as is_same_team_suggestion
    from candidates
    left join options
        on
            candidates.client_id = options.client_id
            and options.preference = 1

)

select * from final
