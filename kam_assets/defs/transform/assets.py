"""The dbt project as Dagster assets, partitioned by the as-of date.

dbt source ``erp.orders`` maps to asset key ``["erp", "orders"]`` (default translator),
the key of the raw asset: the graph connects by itself. Models get ``[schema, name]``.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from kam_assets.dbt_project import dbt_project
from kam_assets.defs.transform.dbt_output import DbtOutput
from kam_assets.partitions import BACKFILL_POLICY, daily_partitions, run_parameters
from kam_assets.resources import KamResource
from pipelines.run_params import dbt_build_args


class KamDbtTranslator(DagsterDbtTranslator):
    """Default keys; dbt models grouped by their schema (staging / intermediate / marts)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        schema = (dbt_resource_props.get("config") or {}).get("schema")
        return schema or super().get_group_name(dbt_resource_props)


@contextmanager
def _env(**values: str) -> Iterator[None]:
    """Set environment variables for the dbt subprocess, restoring them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    name="dbt_build",
    partitions_def=daily_partitions(),
    backfill_policy=BACKFILL_POLICY,  # a backfilled range is one run
    dagster_dbt_translator=KamDbtTranslator(),
)
def kam_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource, kam: KamResource):
    settings = kam.settings()
    args = dbt_build_args(run_parameters(context, settings))
    # one target per data dir (never the checkout): dbt's files, logs and partial parse
    target = settings.data_dir / "dbt" / "target"
    target.mkdir(parents=True, exist_ok=True)
    log_path = target / "dbt.log"
    context.log.info(
        "dbt %s (KAM_WORK_DB=%s; full log %s)", " ".join(args), settings.work_db, log_path
    )
    with (
        _env(**settings.dbt_env()),
        log_path.open("w") as log,
        redirect_stdout(DbtOutput(log, context.log.info)),
    ):
        yield from dbt.cli(args, context=context, target_path=target).stream()
