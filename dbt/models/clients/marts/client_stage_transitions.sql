-- Incremental: a run recomputes the transitions from the first date it writes to
-- client_status_history (macro history_first_written_date; D on a daily run) and keeps the
-- earlier ones, whose latest per client gives the stage the client was in before.
-- depends_on: {{ ref('int_clients__as_of_dates') }}
{{
    config(
        materialized='incremental',
        unique_key=['client_id', 'transition_date'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{% if is_incremental() %}delete from {{ this }} where transition_date >= {{ history_first_written_date() }}{% endif %}"
    )
}}

with

status_history as (

    select * from {{ ref('client_status_history') }}

),

stage_rows as (

    select
        client_id,
        as_of_date,
        lifecycle_stage,
        false as is_known

    from status_history

    {% if is_incremental() -%}
        where as_of_date >= {{ history_first_written_date() }}
    {%- endif %}

    {% if is_incremental() -%}
        union all

        select
            client_id,
            transition_date as as_of_date,
            to_stage as lifecycle_stage,
            true as is_known

        -- the pre-hook removed the transitions from the first written date on
        from {{ this }}

        qualify row_number() over (partition by client_id order by transition_date desc) = 1
    {%- endif %}

),

changes as (

    select
        client_id,
        as_of_date as transition_date,
        lifecycle_stage as to_stage,
        lag(lifecycle_stage) over (partition by client_id order by as_of_date) as from_stage,
        row_number() over (partition by client_id order by as_of_date) = 1 as is_first_row,
        is_known

    from stage_rows

),

transitions as (

    select
        *,
        lag(transition_date) over (partition by client_id order by transition_date) as previous_transition_date

    from changes

    where is_first_row or from_stage != to_stage

),

final as (

    select
        cast(client_id as varchar) as client_id,
        cast(from_stage as varchar) as from_stage,
        cast(to_stage as varchar) as to_stage,
        cast(transition_date as date) as transition_date,
        cast(date_diff('day', previous_transition_date, transition_date) as integer) as days_in_previous_stage

    from transitions

    where not is_known

)

select * from final
