{#-
    Whether a client orders often enough for its 90-day volume to mean something: an
    expected interval of at most var volume_max_interval_days days (see has_volume_drop).
-#}
{% macro is_volume_cadence(expected_interval_days) -%}
    {{ expected_interval_days }} <= {{ var('volume_max_interval_days') }}
{%- endmacro %}
