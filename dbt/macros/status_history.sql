{#-
    The relation marts.client_status_history as the previous build left it, or none when it
    does not exist yet (a first build) or while dbt only parses. Read by
    int_clients__history_dates_built without a ref: the mart is built from that model, so a
    ref would be a cycle.
-#}
{% macro built_status_history() -%}
    {%- if execute -%}
        {{ return(adapter.get_relation(
            database=target.database, schema='marts', identifier='client_status_history'
        )) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#-
    The first as-of date whose client_status_history rows this run writes, as a SQL date
    literal: the earliest history date of int_clients__as_of_dates, else D. Transitions
    from that date on are recomputed by client_stage_transitions; earlier ones stand.
    Queried (not a subquery) so that the filter on the history is a constant.
-#}
{% macro history_first_written_date() -%}
    {%- if execute -%}
        {%- set result = run_query(
            "select cast(least(" ~ as_of_date() ~ ", min(as_of_date) filter (where is_history_date))"
            ~ " as varchar) from " ~ ref('int_clients__as_of_dates')
        ) -%}
        {{ return("cast('" ~ result.columns[0].values()[0] ~ "' as date)") }}
    {%- endif -%}
    {{ return(as_of_date()) }}
{%- endmacro %}
