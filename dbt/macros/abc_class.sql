{#-
    ABC class (docs/rules.md "ABC"): 'A' while the cumulative share of the clients ranked
    before this one is under var abc_a_threshold, 'B' under var abc_b_threshold, else 'C';
    null when the client is not ranked (share_before null). share_before is a SQL expression.
-#}
{% macro abc_class(share_before) -%}
    case
        when {{ share_before }} < cast({{ var('abc_a_threshold') }} as double) then 'A'
        when {{ share_before }} < cast({{ var('abc_b_threshold') }} as double) then 'B'
        when {{ share_before }} is not null then 'C'
    end
{%- endmacro %}
