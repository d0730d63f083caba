{#-
    A left join to the latest row of `relation` at or before each left row's date: the rows
    of `relation` are one per key and date, and `right_next_date` is the key's next date in
    `relation` (null on its last row). `on_keys`: the equality condition on the keys.
    DuckDB: an ASOF LEFT JOIN (chosen for speed: one sorted merge). Other engines (Spark):
    the same rows by a range join, [right_date, right_next_date).
-#}
{% macro asof_left_join(relation, on_keys, left_date, right_date, right_next_date) -%}
    {{ return(adapter.dispatch('asof_left_join', 'kam')(relation, on_keys, left_date, right_date, right_next_date)) }}
{%- endmacro %}

{% macro duckdb__asof_left_join(relation, on_keys, left_date, right_date, right_next_date) -%}
    asof left join {{ relation }}
        on
            {{ on_keys }}
            and {{ left_date }} >= {{ right_date }}
{%- endmacro %}

{% macro default__asof_left_join(relation, on_keys, left_date, right_date, right_next_date) -%}
    left join {{ relation }}
        on
            {{ on_keys }}
            and {{ left_date }} >= {{ right_date }}
            and ({{ right_next_date }} is null or {{ left_date }} < {{ right_next_date }})
{%- endmacro %}
