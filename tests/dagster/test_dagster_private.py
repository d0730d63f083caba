"""The private Dagster names kam uses (kam_assets/dagster_private.py: the launcher's and the
event log's) are still there, with the shape they rely on: an upgrade of the pinned Dagster
fails here, naming what moved, before any `kam run` does. And no other module of kam_assets
imports a private Dagster module."""

from __future__ import annotations

import inspect
import re
import sys
from importlib.metadata import version
from pathlib import Path

import dagster as dg

from kam_assets import dagster_private

REPO = Path(__file__).resolve().parents[2]


def _parameters(function) -> set[str]:
    return set(inspect.signature(function).parameters) - {"self"}


def test_dagster_is_the_version_the_private_names_were_checked_against() -> None:
    assert version("dagster") == dagster_private.CHECKED_DAGSTER_VERSION, (
        "Dagster was upgraded: re-check every name of kam_assets/dagster_private.py (and the "
        "tests below), then set CHECKED_DAGSTER_VERSION"
    )
    pinned = re.search(r'"dagster==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned and pinned[1] == dagster_private.CHECKED_DAGSTER_VERSION


def test_create_run_takes_exactly_the_arguments_the_launcher_passes() -> None:
    source = inspect.getsource(dagster_private.create_run_of_remote_job)
    passed = set(re.findall(r"^\s+(\w+)=", source, re.MULTILINE))
    assert passed == _parameters(dg.DagsterInstance.create_run)


def test_execute_run_and_the_origins_take_what_the_launcher_passes() -> None:
    assert list(inspect.signature(dagster_private.execute_run).parameters)[:3] == [
        "job",
        "dagster_run",
        "instance",
    ]
    # built as the launcher builds them
    origin = dagster_private.InProcessCodeLocationOrigin(
        dagster_private.LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name="kam_assets.definitions",
            working_directory=str(REPO),
        ),
        location_name="kam",
    )
    assert origin.location_name == "kam"
    assert origin.loadable_target_origin.module_name == "kam_assets.definitions"
    assert hasattr(dagster_private.InProcessCodeLocationOrigin, "create_location")


def test_the_backfill_record_has_the_fields_the_launcher_fills() -> None:
    fields = _parameters(dagster_private.PartitionBackfill)
    assert {
        "backfill_id",
        "status",
        "from_failure",
        "tags",
        "backfill_timestamp",
        "partition_set_origin",
        "partition_names",
        "last_submitted_partition_name",
        "title",
    } <= fields
    statuses = dagster_private.BulkActionStatus
    assert {"REQUESTED", "COMPLETED_SUCCESS", "COMPLETED_FAILED"} <= set(statuses.__members__)
    assert hasattr(dagster_private.PartitionBackfill, "with_status")
    assert hasattr(dagster_private.PartitionBackfill, "with_end_timestamp")
    assert re.fullmatch(r"[a-z]{8}", dagster_private.make_new_backfill_id())
    assert isinstance(dagster_private.get_current_timestamp(), float)


def test_the_tags_are_dagsters_own_names() -> None:
    # the UI and the daemon read these tags: a rename would silently unlink our runs
    assert dagster_private.PARTITION_NAME_TAG == "dagster/partition"
    assert dagster_private.BACKFILL_ID_TAG == "dagster/backfill"


def test_the_in_process_location_still_reconstructs_its_repository() -> None:
    from dagster._core.remote_representation.code_location import InProcessCodeLocation

    assert hasattr(InProcessCodeLocation, "_get_reconstructable_repository")


def test_the_event_log_storage_still_has_the_members_kam_overrides() -> None:
    """kam_assets/instance_storage.py subclasses Dagster's SQLite event log and overrides
    private members; a Dagster that renames them would silently bring back the slow path
    (an engine and an fsync per event) or break the instance."""
    storage = dagster_private.SqliteEventLogStorage
    source = inspect.getsource(storage)
    for name in (
        "def _connect(",
        "self._db_lock",
        "self._initialized_dbs",
        "def _initdb(",
        "def conn_string_for_shard(",
    ):
        assert name in source, name
    # what the subclass calls or overrides with the same shape
    assert list(inspect.signature(storage.__init__).parameters)[1:3] == ["base_dir", "inst_data"]
    assert _parameters(storage.conn_string_for_shard) == {"shard_name"}
    assert _parameters(storage._connect) == {"shard"}
    assert {"inst_data", "config_value"} <= _parameters(storage.from_config_value)
    assert callable(storage.wipe) and callable(storage.dispose)
    assert dagster_private.INDEX_SHARD_NAME == "index"
    assert isinstance(dagster_private.SQLITE_BUSY_TIMEOUT_SECONDS, int | float)
    assert {"module_name", "class_name", "config_yaml"} <= set(
        dagster_private.ConfigurableClassData._fields
    )


def test_kam_assets_imports_private_dagster_modules_only_through_dagster_private() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "kam_assets").rglob("*.py"))
        if path.name != "dagster_private.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bdagster\._", line)
    ]
    assert offenders == []
