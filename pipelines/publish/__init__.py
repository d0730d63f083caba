"""Publish: replacing the warehouse atomically with the work DB's ``marts`` (+ ``audit``).

Owns the DuckDB-file publisher (``duckdb_file``), the PostgreSQL publisher (``postgres``,
with ``postgres_types``, ``postgres_swap``), the publish-info tables both write
(``publish_info``), their shared result and error (``result``) and the one PostgreSQL
connection helper (``pg``). May import every lower stage.
"""
