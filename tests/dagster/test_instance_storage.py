"""The instance's event log (kam_assets/instance_storage.py): Dagster's SQLite storage with
its connections kept. Events written through it must be what Dagster's own storage reads,
its engines stay bounded, and the dagster.yaml `kam` writes selects it."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import dagster as dg
import pytest

from kam_assets.cli.environment import dagster_yaml, ensure_dagster_home
from kam_assets.dagster_private import SqliteEventLogStorage
from kam_assets.instance_storage import KEPT_RUN_SHARDS, KamSqliteEventLogStorage
from pipelines.settings import Settings


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
def numbers() -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return ensure_dagster_home(Settings.from_env())


def test_kam_instance_uses_it_and_dagster_reads_what_it_wrote(tmp_path, monkeypatch) -> None:
    home = _home(tmp_path, monkeypatch)
    # as a process that never set DAGSTER_HOME opens it (a test, a script)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, KamSqliteEventLogStorage)
        result = dg.materialize([numbers], instance=instance)
        assert result.success
        run_id = result.run_id
        with storage.run_connection(run_id) as conn:
            synchronous = conn.exec_driver_sql("pragma synchronous").scalar()
            journal = conn.exec_driver_sql("pragma journal_mode").scalar()
        assert (synchronous, journal) == (1, "wal")  # NORMAL in WAL mode

    # Dagster's own storage, on the same files, as another process (the UI) reads them
    plain = SqliteEventLogStorage(str(home / "history" / "runs"))
    types = [
        record.event_log_entry.dagster_event_type
        for record in plain.get_records_for_run(run_id).records
        if record.event_log_entry.is_dagster_event
    ]
    assert dg.DagsterEventType.ASSET_MATERIALIZATION in types
    assert dg.DagsterEventType.ASSET_CHECK_EVALUATION in types
    latest = plain.get_latest_materialization_events([dg.AssetKey("numbers")])
    assert latest[dg.AssetKey("numbers")].run_id == run_id
    check = plain.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("numbers"), "positive"), limit=1
    )
    assert check and check[0].run_id == run_id
    plain.dispose()


def test_engines_stay_bounded_as_runs_accumulate(tmp_path, monkeypatch) -> None:
    _home(tmp_path, monkeypatch)
    with dg.DagsterInstance.get() as instance:
        run_ids = [
            dg.materialize([numbers], instance=instance).run_id for _ in range(KEPT_RUN_SHARDS + 3)
        ]
        storage = instance.event_log_storage
        assert len(storage._engines) <= KEPT_RUN_SHARDS + 1  # + the index
        assert "index" in storage._engines
        # an evicted run's shard is reopened when read again
        assert run_ids[0] not in storage._engines
        assert storage.get_records_for_run(run_ids[0]).records


def test_it_writes_events_faster_than_dagsters_default(tmp_path) -> None:
    """Not a timing claim (benchmarks hold those): the reason the class exists must hold on
    this machine, by a margin no load could fake (pooled + NORMAL vs a new engine and an
    fsync per write).

    The two storages are measured in alternation, five rounds of 60 events each, and the
    medians compared: a burst of load (another process's run on the same cores) lands on
    both sides or is outvoted, instead of deciding the ratio."""

    def seconds_per_event(storage) -> float:
        start = time.perf_counter()
        for i in range(60):
            storage.store_event(_log_entry(f"r{i % 2}"))
        return (time.perf_counter() - start) / 60

    default = SqliteEventLogStorage(str(tmp_path / "default"))
    kept = KamSqliteEventLogStorage(str(tmp_path / "kam"))
    try:
        rounds: dict[str, list[float]] = {"kept": [], "default": []}
        for i in range(5):
            pair = [("kept", kept), ("default", default)]
            for name, storage in pair if i % 2 == 0 else reversed(pair):
                rounds[name].append(seconds_per_event(storage))
        kept_s, default_s = (statistics.median(rounds[k]) for k in ("kept", "default"))
        assert kept_s * 2 < default_s, rounds
    finally:
        default.dispose()
        kept.dispose()


def _log_entry(run_id: str):
    return dg.EventLogEntry(
        error_info=None,
        level=20,
        user_message="a line",
        run_id=run_id,
        timestamp=time.time(),
    )


def test_ensure_dagster_home_updates_only_a_yaml_kam_wrote(tmp_path, monkeypatch) -> None:
    home = _home(tmp_path, monkeypatch)
    config = home / "dagster.yaml"
    assert config.read_text() == dagster_yaml(home)
    old_kam = (
        "# Written by `kam`: one run at a time writes the work DB.\ntelemetry:\n  enabled: false\n"
    )
    config.write_text(old_kam)
    ensure_dagster_home(Settings.from_env())
    assert config.read_text() == dagster_yaml(home)
    users = "telemetry:\n  enabled: false\n"
    config.write_text(users)
    ensure_dagster_home(Settings.from_env())
    assert config.read_text() == users
