"""Benchmarks: the daily run beside its floor, the pipeline at scale, extraction alone.

    kam bench                                   # = kam bench daily (the 600-client demo)
    kam bench daily [--clients 20000] [--no-next-day] [--json]
    kam bench pipeline --clients 20000 --years 3 [--skip-postgres] [--pg-url URL]
    python -m pipelines.benchmark extract --order-lines 5000000 --source sqlite
    python -m pipelines.benchmark extract --order-lines 5000000 --source postgres \\
        --pg-url postgresql://postgres@127.0.0.1:5432/postgres
    python -m pipelines.benchmark extract --order-lines 5000000 --also 500000 --source parquet

``daily``: a real ``kam run`` (subprocess) split into phases by its Dagster step events,
beside the floor: the same sources loaded and the same compiled dbt SQL, tests and checks
run in one DuckDB process (``floor``, ``floor_plan``); the ratio per phase; then the next
day's run (a day of activity added to the sources). See :mod:`pipelines.benchmark.daily`.

``pipeline``: generates the demo sources with ``generate_demo`` (SQLite, cached under
``--cache-dir``, default ``$KAM_DATA_DIR/bench``), then times each phase of the daily run
in its own child process, with its peak RSS: extraction into a fresh work DB, the raw
Great Expectations checks, ``dbt build`` of every model and dbt test (as-of = the
generator's end date; dbt's own target and log folders go to the run's temporary folder,
never to the shared ``dbt/target``), the mart checks, the publish to a temporary DuckDB
warehouse and to a fresh PostgreSQL database (created and dropped). Prints a summary
table; exits 1 when a check or a dbt node failed (the figures are still printed).

``extract``: the source is a bulk synthetic, contract-shaped data set (deterministic;
~5 lines per order, clients = lines / 250) generated with DuckDB and cached under
``--cache-dir`` (SQLite file, Parquet folder, or a PostgreSQL database
``kam_bench_<lines>``), so a second run reuses it. Each extraction runs in a child process
into a fresh work DB, so the peak RSS printed is the extraction's own. ``--also`` runs a
second (smaller) size to show that memory stays bounded while the row count grows.

Peak RSS is VmHWM of the phase's process (Linux), or for dbt the ``ru_maxrss`` of the dbt
process reaped with ``wait4`` by a wrapper that imports nothing heavy.
"""
