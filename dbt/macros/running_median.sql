{#-
    The median of `expression` over the rows of a partition up to the current row (by
    `order_by`), as a double; nulls ignored, null while there is no value.
    DuckDB: median() over a running frame. Spark: its median() is not a running-frame window
    function, so the sorted list of the values so far and its middle element(s).
-#}
{% macro running_median(expression, partition_by, order_by) -%}
    {{ return(adapter.dispatch('running_median', 'kam')(expression, partition_by, order_by)) }}
{%- endmacro %}

{% macro duckdb__running_median(expression, partition_by, order_by) -%}
    cast(
        median({{ expression }}) over (
            partition by {{ partition_by }} order by {{ order_by }}
            rows between unbounded preceding and current row
        ) as double
    )
{%- endmacro %}

{% macro default__running_median(expression, partition_by, order_by) -%}
    {%- set values -%}
        array_sort(collect_list({{ expression }}) over (
            partition by {{ partition_by }} order by {{ order_by }}
            rows between unbounded preceding and current row
        ))
    {%- endset -%}
    case
        when size({{ values }}) > 0
            then (
                cast(element_at({{ values }}, cast(floor((size({{ values }}) + 1) / 2.0) as integer)) as double)
                + cast(element_at({{ values }}, cast(ceil((size({{ values }}) + 1) / 2.0) as integer)) as double)
            ) / 2
    end
{%- endmacro %}
