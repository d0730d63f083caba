{#- Where the expected interval came from (policy also covers the project default). -#}
{% macro interval_source(own, policy, norm) -%}
    case
        when {{ own }} is not null then 'own_history'
        when {{ policy }} is not null then 'policy'
        when {{ norm }} is not null then 'segment_norm'
        else 'policy'
    end
{%- endmacro %}
