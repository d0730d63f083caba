"""The dbt project as Dagster assets, partitioned by the as-of date.

dbt source ``erp.orders`` maps to asset key ``["erp", "orders"]`` (default translator),
the key of the raw asset: the graph connects by itself. Models get ``[schema, name]``.

Fast by default: the run's parameters go into the work DB's ``kam_run.run_parameters``
right before dbt runs, and dbt gets only vars that are the same every day
(:func:`pipelines.run_params.dbt_daily_build_args`), so dbt reuses its partial parse
(``partial_parse.msgpack`` in the data dir's target folder) instead of re-parsing the whole
project; the dbt resource skips dagster-dbt's ``dbt --version`` and adapter set-up
(:class:`kam_assets.resources.KamDbtCliResource`).
"""

import dataclasses
import os
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets

from kam_assets.dbt_project import dbt_project
from kam_assets.defs.transform.dbt_output import DbtOutput
from kam_assets.partitions import BACKFILL_POLICY, daily_partitions, run_parameters
from kam_assets.resources import KamResource
from pipelines.dbt_partial_parse import PARTIAL_PARSE_FILE, seed_partial_parse
from pipelines.history_corrections import (
    find_correction_in_child,
    record_fingerprints_in_child,
)
from pipelines.run_params import dbt_daily_build_args, write_run_parameters
from pipelines.settings import URL_SETTINGS, Settings


class KamDbtTranslator(DagsterDbtTranslator):
    """Default keys; dbt models grouped by their schema (staging / intermediate / marts)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        schema = (dbt_resource_props.get("config") or {}).get("schema")
        return schema or super().get_group_name(dbt_resource_props)


def expected_counts(context: dg.AssetExecutionContext) -> tuple[int | None, int | None]:
    """(models with seeds and snapshots, data tests) that this step's ``dbt build`` runs,
    for the progress line; None where unknown. Every selected asset of the step is one dbt
    node; a full build runs every data test of the manifest, a subset its selected checks."""
    try:
        models = len(context.selected_asset_keys)
        if context.is_subset:
            return models, len(context.selected_asset_check_keys)
        manifest, *_ = get_manifest_and_translator_from_dbt_assets([context.assets_def])
        tests = sum(1 for n in manifest["nodes"].values() if n.get("resource_type") == "test")
        return models, tests
    except Exception:  # progress only: never fail the step for it (the test checks counts)
        return None, None


def unreported_models(
    selected: AbstractSet[dg.AssetKey], built: AbstractSet[dg.AssetKey]
) -> list[str]:
    """The selected models (seeds, snapshots) a dbt build yielded no result for, sorted.
    Dagster would call the step a success anyway and skip what depends on them, the publish
    included (dagster-io/dagster #22242): a run that exits 0 having published nothing."""
    return sorted(key.to_user_string() for key in selected - built)


@contextmanager
def _env(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables for the dbt subprocess, restoring
    them afterwards (dagster-dbt gives dbt a copy of os.environ)."""
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _dbt_environment(settings: Settings) -> dict[str, str | None]:
    """What dbt gets: the variables its profile reads, and none of the source or warehouse
    URLs (they may carry passwords; dbt reads only the work DB), so no password is in
    /proc/<pid>/environ of dbt or of the processes it starts."""
    return {**settings.dbt_env(), **dict.fromkeys(sorted(URL_SETTINGS))}


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
    if settings.dbt_target != "duckdb":
        # the checks, the history corrections and the publish read the DuckDB work DB
        raise dg.Failure(
            f"KAM_DBT_TARGET={settings.dbt_target}: the daily job builds on DuckDB only (its "
            "checks and publish read the DuckDB work DB); build on Spark with "
            "python -m pipelines.spark_build (README 'Running on Spark')"
        )
    params = run_parameters(context, settings)
    args = dbt_daily_build_args(params)
    # one target per data dir (never the checkout): dbt's files, logs and partial parse
    target = settings.data_dir / "dbt" / "target"
    target.mkdir(parents=True, exist_ok=True)
    # dbt writes its own debug log (JSON, timestamps) to dbt.log there; the console lines
    # dagster-dbt echoes go to dbt_output.log
    log_path = target / "dbt_output.log"
    # orders changed, deleted or arriving late inside the built history: rebuild its
    # dates from the earliest of them (the backfill path), counted in the run's log
    # DuckDB capped as in dbt (unbounded, the fingerprints took 1.2 GB at 20,000 clients),
    # in a child process so that the kam process, alive for the whole run, never holds it
    correction = find_correction_in_child(
        settings.work_db, params.as_of, params.history_days, settings.duckdb_memory_limit
    )
    context.log.info("history corrections: %s", correction.describe())
    if correction.rebuild_from is not None and (
        params.rebuild_from is None or correction.rebuild_from < params.rebuild_from
    ):
        params = dataclasses.replace(params, rebuild_from=correction.rebuild_from)
    write_run_parameters(settings.work_db, params)
    seeded = seed_partial_parse(
        Path(dbt_project.manifest_path).parent / PARTIAL_PARSE_FILE,  # packaged beside it
        target,
        cli_vars=params.stable_dbt_vars(),
        work_db=settings.work_db,
        memory_limit=settings.duckdb_memory_limit,
        target=settings.dbt_env()["DBT_TARGET"],  # dbt reads DBT_TARGET as --target
    )
    context.log.info("dbt partial parse for this data dir: %s", seeded)
    context.log.info(
        "dbt %s, run parameters in kam_run.run_parameters: as-of %s, history %s days, "
        "rebuild from %s (KAM_WORK_DB=%s; output %s, dbt's log %s)",
        " ".join(args),
        params.as_of,
        params.history_days,
        params.rebuild_from or "-",
        settings.work_db,
        log_path,
        target / "dbt.log",
    )
    models, tests = expected_counts(context)
    with (
        _env(**_dbt_environment(settings)),
        log_path.open("w") as log,
        redirect_stdout(DbtOutput(log, context.log.info, models=models, tests=tests)),
    ):
        built: set[dg.AssetKey] = set()
        for event in dbt.cli(args, context=context, target_path=target).stream():
            if isinstance(event, dg.Output):
                built.add(context.asset_key_for_output(event.output_name))
            yield event
    if missing := unreported_models(context.selected_asset_keys, built):
        raise dg.Failure(
            f"dbt exited 0 but reported no result for {len(missing)} selected model(s): "
            f"{', '.join(missing[:10])}: a line of dbt's output was unreadable (see {log_path}); "
            "nothing is published, run again"
        )
    # the build succeeded: what it was built from is the reference of the next run
    record_fingerprints_in_child(settings.work_db, settings.duckdb_memory_limit)
