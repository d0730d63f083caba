{#-
    New client (docs/rules.md "Lifecycle"): the first order within the last
    var new_client_days days before the as-of date. SQL expressions.
-#}
{% macro is_new_client(first_order_date, as_of_date) -%}
    {{ first_order_date }} > {{ as_of_date }} - {{ var('new_client_days') }}
{%- endmacro %}
