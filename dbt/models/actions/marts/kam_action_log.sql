{{
    config(
        materialized='incremental',
        unique_key=['action_id', 'opened_on'],
        incremental_strategy=('delete+insert' if target.type == 'duckdb' else 'insert_overwrite'),
        partition_by=(none if target.type == 'duckdb' else ['opened_on']),
        on_schema_change='append_new_columns',
        full_refresh=false
    )
}}
{#- Every action kam_actions ever listed, with its state: one row per (action_id, opened_on).
    A run at D opens a row for each listed action without an open row, closes open rows
    (a logged interaction by the action's manager with the client since the opening; else the
    action no longer listed = its condition cleared; else still listed action_expire_days after
    its due date = expired) and records the outcome (a completed order within
    action_outcome_days of the opening). Only rows that can still change are rewritten, so a
    rerun of D gives the same rows. Rules in kam_action_log.yml.
    Spark: a plain Parquet table has no merge; its opened_on partitions are overwritten and the
    rows of those partitions that this run does not rewrite are kept
    (macros/get_insert_overwrite_sql.sql), which is DuckDB's delete+insert by key. -#}
{%- set crm_enabled = 'true' if has_crm() else 'false' -%}

with

actions as (

    select * from {{ ref('kam_actions') }}

),

interactions as (

    select * from {{ ref('stg_crm__interactions') }}
    where {{ crm_enabled }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

as_of as (

    select {{ as_of_date() }} as as_of_date

),

previous as (

    {% if is_incremental() %}
        select
            action_id,
            manager_id,
            client_id,
            client_name,
            action_type,
            priority,
            opened_on,
            due_date,
            last_listed_on,
            closed_on,
            closed_how,
            interaction_on,
            ordered_again_on,
            outcome
        from {{ this }}
    {% else %}
        select
            cast(null as string) as action_id,
            cast(null as string) as manager_id,
            cast(null as string) as client_id,
            cast(null as string) as client_name,
            cast(null as string) as action_type,
            cast(null as integer) as priority,
            cast(null as date) as opened_on,
            cast(null as date) as due_date,
            cast(null as date) as last_listed_on,
            cast(null as date) as closed_on,
            cast(null as string) as closed_how,
            cast(null as date) as interaction_on,
            cast(null as date) as ordered_again_on,
            cast(null as string) as outcome
        where false
    {% endif %}

),

-- the log as a run at D sees it: rows opened after D (a rerun of an earlier date) stay as is
known as (

    select previous.*
    from previous
    cross join as_of
    where previous.opened_on <= as_of.as_of_date

),

prior_run as (

    select max(known.last_listed_on) as prior_listed_on
    from known
    cross join as_of
    where known.last_listed_on < as_of.as_of_date

),

latest as (

    select * from (
        select
            *,
            row_number() over (partition by action_id order by opened_on desc) as recency_rank
        from known
    ) as ranked
    where recency_rank = 1

),

-- listed today and no row to continue: never seen, or its last row was closed on an earlier
-- run, except an expired action still listed without a break (it stays expired)
opened as (

    select
        actions.action_id,
        actions.manager_id,
        actions.client_id,
        actions.client_name,
        actions.action_type,
        actions.priority,
        as_of.as_of_date as opened_on,
        actions.due_date,
        cast(null as date) as last_listed_on,
        cast(null as date) as closed_on,
        cast(null as string) as closed_how,
        cast(null as date) as interaction_on,
        cast(null as date) as ordered_again_on,
        cast(null as string) as outcome
    from actions
    cross join as_of
    cross join prior_run
    left join latest on actions.action_id = latest.action_id
    where
        latest.action_id is null
        or (
            latest.closed_on < as_of.as_of_date
            and not (
                latest.closed_how = 'expired'
                and latest.last_listed_on >= coalesce(prior_run.prior_listed_on, as_of.as_of_date)
            )
        )

),

-- rows that can still change: open, expired (they track being listed) or outcome pending
open_or_pending as (

    select * from known
    where closed_on is null or closed_how = 'expired' or outcome is null
    union all
    select * from opened

),

first_interaction as (

    select
        open_or_pending.action_id,
        open_or_pending.opened_on,
        min(cast(interactions.occurred_at as date)) as interaction_on
    from open_or_pending
    cross join as_of
    inner join interactions
        on
            open_or_pending.client_id = interactions.client_id
            and open_or_pending.manager_id = interactions.manager_id
            and cast(interactions.occurred_at as date)
            between open_or_pending.opened_on and as_of.as_of_date
    where open_or_pending.closed_on is null
    group by open_or_pending.action_id, open_or_pending.opened_on

),

first_order as (

    select
        open_or_pending.action_id,
        open_or_pending.opened_on,
        min(orders.order_date) as ordered_again_on
    from open_or_pending
    cross join as_of
    inner join orders
        on
            open_or_pending.client_id = orders.client_id
            and open_or_pending.opened_on < orders.order_date
            and open_or_pending.opened_on + {{ var('action_outcome_days') }} >= orders.order_date
            and as_of.as_of_date >= orders.order_date
            and orders.status = 'completed'
            and orders.net_revenue > 0
    where open_or_pending.outcome is null
    group by open_or_pending.action_id, open_or_pending.opened_on

),

judged as (

    select
        open_or_pending.*,
        actions.action_id is not null as is_listed,
        first_interaction.interaction_on as new_interaction_on,
        first_order.ordered_again_on as new_ordered_again_on,
        as_of.as_of_date
    from open_or_pending
    cross join as_of
    left join actions on open_or_pending.action_id = actions.action_id
    left join first_interaction
        on
            open_or_pending.action_id = first_interaction.action_id
            and open_or_pending.opened_on = first_interaction.opened_on
    left join first_order
        on
            open_or_pending.action_id = first_order.action_id
            and open_or_pending.opened_on = first_order.opened_on

),

final as (

    select
        action_id,
        manager_id,
        client_id,
        client_name,
        action_type,
        priority,
        opened_on,
        due_date,
        case
            when is_listed and (closed_on is null or closed_how = 'expired') then as_of_date
            else last_listed_on
        end as last_listed_on,
        case
            when closed_on is not null then closed_on
            when new_interaction_on is not null or not is_listed then as_of_date
            when as_of_date > due_date + {{ var('action_expire_days') }} then as_of_date
        end as closed_on,
        case
            when closed_on is not null then closed_how
            when new_interaction_on is not null then 'interaction'
            when not is_listed then 'condition_cleared'
            when as_of_date > due_date + {{ var('action_expire_days') }} then 'expired'
        end as closed_how,
        coalesce(interaction_on, new_interaction_on) as interaction_on,
        coalesce(ordered_again_on, new_ordered_again_on) as ordered_again_on,
        case
            when outcome is not null then outcome
            when new_ordered_again_on is not null then 'ordered'
            when as_of_date >= opened_on + {{ var('action_outcome_days') }} then 'no_order'
        end as outcome,
        as_of_date as updated_on
    from judged

)

select
    cast(action_id as string) as action_id,
    cast(manager_id as string) as manager_id,
    cast(client_id as string) as client_id,
    cast(client_name as string) as client_name,
    cast(action_type as string) as action_type,
    cast(priority as integer) as priority,
    cast(opened_on as date) as opened_on,
    cast(due_date as date) as due_date,
    cast(last_listed_on as date) as last_listed_on,
    cast(closed_on as date) as closed_on,
    cast(closed_how as string) as closed_how,
    cast(interaction_on as date) as interaction_on,
    cast(ordered_again_on as date) as ordered_again_on,
    cast(outcome as string) as outcome,
    cast(updated_on as date) as updated_on
from final
