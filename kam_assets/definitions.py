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


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs()
