"""The daily brief per manager: self-contained HTML read from the PUBLISHED warehouse.

``build_briefs`` (``build``) reads the published DuckDB file or PostgreSQL schema
(``warehouse``: never the work DB), renders one page per manager and an index for the sales
lead (``render``) with charts as inline SVG (``charts``, written directly, no plotting
library), and writes them under ``<briefs_dir>/<as_of>/``. ``mail`` sends them (optional).
Framework-free: no Dagster here.
"""
