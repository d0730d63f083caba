"""dbt's ``target`` as on the default DuckDB output (for sqlfluff only)."""

type = "duckdb"  # noqa: A001 (dbt's attribute name)
name = "duckdb"
