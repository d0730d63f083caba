"""Every private Dagster name kam uses, in one place: the run launcher's and the event log's.

Dagster has no public API that records a run of a code location's job (so the UI lists it on
the job's page, with the job's origin) and executes it in the calling process, nor one that
records a backfill: ``execute_job`` records a run without the code location's origin, and
``submit_run`` hands the run to the run coordinator (the daemon would execute it, not this
process, losing the streamed progress and the kill semantics of `kam run`). So the launcher
(kam_assets/cli/runner.py) uses these names, and only through this module:
tests/dagster/test_dagster_private.py imports each one and checks the signatures the
launcher relies on, so an upgrade of the pinned Dagster fails there, by name, before any
run does.

The instance's event log (kam_assets/instance_storage.py) subclasses Dagster's SQLite event
log storage, which Dagster exports from no public module, and overrides private members of
it (how a shard's connection is obtained); its names are here too, and the same test checks
the members it overrides are still there. No other module of kam_assets imports a
``dagster._`` module (the test fails on one).
"""

from __future__ import annotations

from dagster._core.execution.api import execute_run
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.tags import BACKFILL_ID_TAG, PARTITION_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster._serdes import ConfigurableClassData
from dagster._time import get_current_timestamp

#: the Dagster version these names were checked against (pyproject.toml pins it)
CHECKED_DAGSTER_VERSION = "1.13.27"


def create_run_of_remote_job(instance, repository, remote_job, plan, run_config, tags):
    """A run of ``remote_job`` (a job of a loaded code location) recorded in ``instance``
    with the location's origin and the job's snapshots, as Dagster's own launchers record
    one. ``DagsterInstance.create_run`` takes every argument by keyword, none defaulted."""
    return instance.create_run(
        job_name=remote_job.name,
        run_id=None,
        run_config=run_config,
        resolved_op_selection=None,
        step_keys_to_execute=None,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags=tags,
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=None,
        asset_check_selection=None,
        asset_graph=repository.asset_graph,
    )


def reconstructable_job(location, repository_name: str, job_name: str):
    """The job of an in-process code location, reconstructable in this process (for
    ``execute_run``); only a private method of the location gives it."""
    repository = location._get_reconstructable_repository(repository_name)
    return repository.get_reconstructable_job(job_name)


__all__ = [
    "BACKFILL_ID_TAG",
    "CHECKED_DAGSTER_VERSION",
    "INDEX_SHARD_NAME",
    "PARTITION_NAME_TAG",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "BulkActionStatus",
    "ConfigurableClassData",
    "InProcessCodeLocationOrigin",
    "LoadableTargetOrigin",
    "PartitionBackfill",
    "SqliteEventLogStorage",
    "create_run_of_remote_job",
    "execute_run",
    "get_current_timestamp",
    "make_new_backfill_id",
    "reconstructable_job",
]
