"""The Dagster code location: a thin root merging the per-domain definitions.

Loaded lazily (``@dg.definitions``); the dbt manifest must exist before loading
(``dagster-dbt project prepare-and-package --file kam_assets/dbt_project.py``).
"""

from __future__ import annotations

import dagster as dg


def build_defs() -> dg.Definitions:
    from kam_assets.console import kam_console
    from kam_assets.defs import brief, ingest, jobs, publish, transform
    from kam_assets.resources import build_resources

    return dg.Definitions.merge(
        ingest.build_defs(),
        transform.build_defs(),
        publish.build_defs(),
        brief.build_defs(),
        jobs.build_defs(),
        dg.Definitions(resources=build_resources(), loggers={"console": kam_console}),
    )


def _hold_urls_in_a_run_worker() -> None:
    """In the process a Dagster code server spawns to execute a run (UI, schedule or
    backfill daemon; a ``multiprocessing`` child, which loads these definitions first), the
    source and warehouse URLs leave the environment before the run starts any child
    process (Dagster's ``tail -F`` log watchers, dbt, its helpers): none of them needs them.
    `kam run` holds them the same way around its in-process run (``held_urls``); the code
    server itself keeps them for the run workers it starts."""
    import multiprocessing

    from pipelines.settings import hold_urls_for_good

    if multiprocessing.parent_process() is not None:
        hold_urls_for_good()


@dg.definitions
def defs() -> dg.Definitions:
    _hold_urls_in_a_run_worker()
    return build_defs()
