-- Rebuilt in full from client_status_history on every run (a table, not incremental): the
-- transitions are a pure function of the history, so a run interrupted between the two
-- marts, a backfill that rewrote past dates or a history cut at an older as-of date is
-- repaired by the next run. An incremental version that recomputed only from the first
-- date a run wrote published a wrong transition date forever after such a crash.

with

status_history as (

    select * from {{ ref('client_status_history') }}

),

changes as (

    select
        client_id,
        as_of_date as transition_date,
        lifecycle_stage as to_stage,
        lag(lifecycle_stage) over (partition by client_id order by as_of_date) as from_stage,
        row_number() over (partition by client_id order by as_of_date) = 1 as is_first_row

    from status_history

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
        cast(client_id as string) as client_id,
        cast(from_stage as string) as from_stage,
        cast(to_stage as string) as to_stage,
        cast(transition_date as date) as transition_date,
        cast({{ dbt.datediff('previous_transition_date', 'transition_date', 'day') }} as integer) as days_in_previous_stage

    from transitions

)

select * from final
