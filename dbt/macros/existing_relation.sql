{#-
    The relation `identifier` in this model's schema when it exists, else none (also while
    dbt only parses, and in a unit test, which has no `this`). For reading a model's previous state without a ref, where a ref would
    be a cycle (kam_actions reads the action log that is built from it).
-#}
{% macro existing_relation(identifier) -%}
    {%- if not execute or this is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.get_relation(this.database, this.schema, identifier)) }}
{%- endmacro %}
