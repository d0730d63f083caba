{#-
    Spark's insert_overwrite (dbt-spark's macro, overridden here): with a `partition_by`
    (dynamic partition overwrite) and a `unique_key`, the rows a run does not rewrite stay,
    which makes it the `delete+insert` by key that the DuckDB build uses, on plain Parquet
    tables where dbt-spark's `merge` needs Delta, Iceberg or Hudi. Every partition the new
    rows fall in is overwritten by the new rows plus that partition's old rows whose key is not
    among them; other partitions are not touched. kam_action_log (key action_id, opened_on;
    partitions opened_on) needs it: a run rewrites only the rows that can still change. With
    the key equal to the partition (client_status_history: as_of_date) nothing old is kept
    and it is dbt-spark's plain insert_overwrite. Reading the table being overwritten is
    allowed in dynamic partition mode (Spark writes to a staging folder first).
-#}
{% macro get_insert_overwrite_sql(source_relation, target_relation, existing_relation) %}
    {%- set dest_columns = adapter.get_columns_in_relation(target_relation) -%}
    {%- set dest_cols_csv = dest_columns | map(attribute='quoted') | join(', ') -%}
    {%- set unique_key = config.get('unique_key') -%}
    {%- set partition_by = config.get('partition_by') -%}
    {%- set keys = [unique_key] if unique_key is string else (unique_key or []) -%}
    {%- set partitions = [partition_by] if partition_by is string else (partition_by or []) -%}
    {%- set keeps_rows = partitions and keys and (keys | sort) != (partitions | sort) -%}
    {% if existing_relation.is_iceberg %}
        insert overwrite {{ target_relation }}
    {% else %}
        insert overwrite table {{ target_relation }}
        {{ partition_cols(label="partition") }}
    {% endif %}
    select {{ dest_cols_csv }} from {{ source_relation }}
    {%- if keeps_rows %}
        union all
        select {{ dest_cols_csv }} from {{ target_relation }} as kept
        where
            ({{ partitions | join(', ') }}) in (select {{ partitions | join(', ') }} from {{ source_relation }})
            and not exists (
                select 1 from {{ source_relation }} as rewritten
                where
                {%- for key in keys %}
                    rewritten.{{ key }} = kept.{{ key }}{% if not loop.last %} and{% endif %}
                {%- endfor %}
            )
    {%- endif %}
{% endmacro %}
