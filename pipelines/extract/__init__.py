"""Extract: reading the sources into the raw layer of the work DuckDB.

Owns the source connectors (``base``: :class:`~pipelines.extract.base.Source`, its
errors and batch schema; ``casting``: contract-type casts; ``sql_source``,
``folder_source``; ``connect.open_source``), the raw layer's schema (``raw_schema``) and
the incremental, idempotent loader (``raw_loader``). Imports only the base modules
(contract, settings, secrets, identifiers).
"""
