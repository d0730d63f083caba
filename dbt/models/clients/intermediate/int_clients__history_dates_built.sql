-- The as-of dates of the history window that marts.client_status_history already holds,
-- read from the previous build's table (macro built_status_history: not a ref, the mart is
-- built from this model). Without that table (a first build) no date is built yet.
{%- set history = built_status_history() %}

with

built_dates as (

    {% if history is not none -%}
        select distinct cast(as_of_date as date) as as_of_date

        from {{ history }}

        where as_of_date >= {{ history_start_date() }}
    {%- else -%}
        select cast(null as date) as as_of_date

        where false
    {%- endif %}

),

final as (

    select as_of_date

    from built_dates

)

select * from final
