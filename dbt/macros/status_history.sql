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
