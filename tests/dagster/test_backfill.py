"""Backfills (issue 10): a range of as-of dates D1..D2 is ONE run of the daily job, as of D2
with the history rebuilt from D1, whether Dagster's backfill machinery (the UI) or
`kam backfill --from D1 --to D2` launches it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
REBUILD_FROM = "kam/rebuild_from"
D1, D2 = "2026-09-28", "2026-09-30"  # the demo fixture ends on D2
DAYS = ["2026-09-28", "2026-09-29", "2026-09-30"]


def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from pipelines.settings import Settings

    for key in list(os.environ):
        if key.startswith("KAM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path / "data"))
    return Settings.from_env()


def _context(tags: dict[str, str]):
    """The parts of a step's context run_parameters reads: the run's tags and record."""
    created = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
    record = SimpleNamespace(create_timestamp=created)
    return SimpleNamespace(
        run=SimpleNamespace(run_id="r1", tags=tags),
        instance=SimpleNamespace(get_run_record_by_id=lambda run_id: record),
    )


# --- run parameters of a range (no run) -----------------------------------------------


def test_run_parameters_of_a_partition_range_are_as_of_its_last_date_rebuilt_from_its_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kam_assets.partitions import run_parameters

    settings = _settings(monkeypatch, tmp_path)
    ranged = run_parameters(_context({RANGE_START: D1, RANGE_END: D2}), settings)
    assert (ranged.as_of, ranged.rebuild_from) == (date(2026, 9, 30), date(2026, 9, 28))
    assert ranged.today == date(2026, 10, 1)  # the run's creation, as for one partition
    assert ranged.dbt_vars()["rebuild_from"] == D1
    assert ranged.dbt_vars()["as_of_date"] == D2

    single = run_parameters(_context({"dagster/partition": D2}), settings)
    assert (single.as_of, single.rebuild_from) == (date(2026, 9, 30), None)
    one_day = run_parameters(_context({RANGE_START: D2, RANGE_END: D2}), settings)
    assert (one_day.as_of, one_day.rebuild_from) == (date(2026, 9, 30), date(2026, 9, 30))

    with pytest.raises(dg.Failure, match="ends before it starts"):
        run_parameters(_context({RANGE_START: D2, RANGE_END: D1}), settings)

    # `kam backfill`'s form: the one partition D2, history rebuilt from the tag's date
    tagged = run_parameters(_context({"dagster/partition": D2, REBUILD_FROM: D1}), settings)
    assert (tagged.as_of, tagged.rebuild_from) == (date(2026, 9, 30), date(2026, 9, 28))
    assert tagged.dbt_vars() == ranged.dbt_vars()
    with pytest.raises(dg.Failure, match=f"tag kam/rebuild_from={D2} is after its partition"):
        run_parameters(_context({"dagster/partition": D1, REBUILD_FROM: D2}), settings)
    with pytest.raises(dg.Failure, match="tag kam/rebuild_from is not"):
        run_parameters(_context({"dagster/partition": D2, REBUILD_FROM: "last week"}), settings)
    with pytest.raises(dg.Failure, match="has no partition"):
        run_parameters(_context({}), settings)


def test_assets_and_unpartitioned_checks_of_a_range_run_get_the_same_parameters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In a real (small) run of a range, as Dagster executes a single-run backfill."""
    from kam_assets.partitions import BACKFILL_POLICY, run_parameters

    settings = _settings(monkeypatch, tmp_path)
    seen = {}

    @dg.asset(
        partitions_def=dg.DailyPartitionsDefinition(start_date="2026-01-01"),
        backfill_policy=BACKFILL_POLICY,
    )
    def toy(context):  # no annotation: they are strings here (__future__)
        assert context.partition_key_range == dg.PartitionKeyRange(D1, D2)
        seen["asset"] = run_parameters(context, settings)
        return dg.MaterializeResult()

    @dg.asset_check(asset=toy, blocking=True)
    def toy_check(context):
        seen["check"] = run_parameters(context, settings)
        return dg.AssetCheckResult(passed=True)

    result = dg.materialize(
        [toy, toy_check],
        instance=dg.DagsterInstance.ephemeral(),
        tags={RANGE_START: D1, RANGE_END: D2},
    )
    assert result.success
    assert seen["asset"] == seen["check"]
    assert seen["asset"] is seen["check"]  # derived once for the run, reused by the check
    params = seen["check"]
    assert (params.as_of, params.rebuild_from) == (date(2026, 9, 30), date(2026, 9, 28))
    # one materialization per day of the range: the UI shows the range as materialized
    assert sorted(m.partition for m in result.asset_materializations_for_node("toy")) == DAYS


# --- the daily job's definitions ---------------------------------------------------------


def test_every_asset_of_the_daily_job_has_the_single_run_backfill_policy(kam_defs) -> None:
    graph = kam_defs.resolve_asset_graph()
    policies = {
        key.to_user_string(): graph.get(key).backfill_policy
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_partitioned
    }
    assert "warehouse" in policies and "marts/client_status_history" in policies
    assert {str(p) for p in policies.values()} == {str(dg.BackfillPolicy.single_run())}
    assert kam_defs.resolve_job_def("kam_daily").backfill_policy == dg.BackfillPolicy.single_run()


def test_a_backfill_launched_in_dagster_is_one_run_of_the_range(
    dbt_manifest: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The backfill daemon's own iteration, on the code location `kam dev` serves, for a
    backfill of the assets (asset graph page) and one of the job (job page): each launches
    one run, tagged with the range (the run launcher is mocked: nothing executes here)."""
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._time import get_current_timestamp

    _settings(monkeypatch, tmp_path)
    target = InProcessWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(
            LoadableTargetOrigin(
                executable_path=sys.executable,
                module_name="kam_assets.definitions",
                working_directory=str(REPO),
            ),
            location_name="kam",
        )
    )
    launcher = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    with (
        instance_for_test(overrides={"run_launcher": launcher}) as instance,
        create_test_daemon_workspace_context(target, instance) as workspace,
    ):
        request = workspace.create_request_context()
        graph = request.asset_graph
        [repo] = request.get_code_location("kam").get_repositories().values()
        [partition_set] = [s for s in repo.get_partition_sets() if s.job_name == "kam_daily"]
        backfills = {
            "assets": PartitionBackfill.from_asset_partitions(
                backfill_id="assets",
                asset_graph=graph,
                partition_names=DAYS,
                asset_selection=list(graph.materializable_asset_keys),
                backfill_timestamp=get_current_timestamp(),
                tags={},
                dynamic_partitions_store=instance,
                all_partitions=False,
                title=None,
                description=None,
                run_config=None,
            ),
            "job": PartitionBackfill(
                backfill_id="job",
                partition_set_origin=partition_set.get_remote_origin(),
                status=BulkActionStatus.REQUESTED,
                partition_names=DAYS,
                from_failure=False,
                reexecution_steps=None,
                tags={},
                backfill_timestamp=get_current_timestamp(),
            ),
        }
        for backfill_id, backfill in backfills.items():
            instance.add_backfill(backfill)
            logger = logging.getLogger("test_backfill")
            list(execute_backfill_iteration(workspace, logger))
            runs = instance.get_runs(filters=dg.RunsFilter.for_backfill(backfill_id))
            assert len(runs) == 1, (backfill_id, [r.tags for r in runs])
            [run] = runs
            assert run.tags[RANGE_START] == D1 and run.tags[RANGE_END] == D2, run.tags
            assert "dagster/partition" not in run.tags
            if backfill_id == "job":  # the job's run: its executor and one-writer tag
                assert run.job_name == "kam_daily" and run.tags["kam/work_db"] == "writer"
            else:  # the assets' run: every asset and the checks on them
                assert len(run.asset_selection) == len(graph.materializable_asset_keys)
                assert run.asset_check_selection, "the blocking checks run with the assets"
            # the run's steps derive as-of D2, rebuilt from D1, from exactly these tags
            from kam_assets.partitions import partition_dates

            context = SimpleNamespace(run=run)
            assert partition_dates(context) == (date(2026, 9, 28), date(2026, 9, 30), True)


# --- kam backfill: refused before any run ------------------------------------------------


def _kam(env_overrides: dict[str, str], *args: str, timeout: int = 120):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DAGSTER_"))}
    env.update(env_overrides)
    return subprocess.run(
        [str(BIN / "kam"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--from", "2026-09-30", "--to", "2026-09-28"],
            "kam backfill: --from 2026-09-30 is after --to 2026-09-28",
        ),
        (
            ["--from", "2011-12-01", "--to", "2026-09-28"],
            "kam backfill: --from 2011-12-01: as-of 2011-12-01 is before the first daily "
            "partition, KAM_PARTITIONS_START=2020-01-01",
        ),
        (
            ["--from", "2026-09-01", "--to", "2999-01-01"],
            "kam backfill: --to 2999-01-01: as-of 2999-01-01 is not a complete day yet",
        ),
    ],
)
def test_kam_backfill_refuses_a_bad_range_naming_the_argument(
    args: list[str], expected: str, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    from kam_assets.cli import main

    _settings(monkeypatch, tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{tmp_path / 'erp.sqlite'}")
    assert main(["backfill", *args]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert not (tmp_path / "data" / "dagster_home").exists()  # no run recorded
    assert not (tmp_path / "data" / "work").exists()


def test_kam_backfill_refuses_a_bad_date_naming_the_argument(tmp_path: Path) -> None:
    proc = _kam(
        {"KAM_DATA_DIR": str(tmp_path / "data"), "KAM_ERP_URL": str(tmp_path)},
        "backfill",
        "--from",
        "2026-09-01",
        "--to",
        "2026-13-01",
    )
    assert proc.returncode == 2
    assert "argument --to: not a date (YYYY-MM-DD): '2026-13-01'" in proc.stderr
    assert not (tmp_path / "data").exists()


def _dbt_run_parameters(data: Path) -> tuple[str | None, str | None]:
    """(as_of_date, rebuild_from) of the run's dbt build."""
    import duckdb

    results = json.loads((data / "dbt" / "target" / "run_results.json").read_text())
    dbt_vars = results["args"].get("vars") or {}
    if isinstance(dbt_vars, str):
        dbt_vars = json.loads(dbt_vars)
    if "as_of_date" in dbt_vars:
        return dbt_vars["as_of_date"], dbt_vars.get("rebuild_from")
    table = dbt_vars["run_parameters_table"]
    con = duckdb.connect(str(data / "work" / "kam_work.duckdb"), read_only=True)
    try:
        [(as_of, rebuild_from)] = con.execute(
            f"select as_of_date, rebuild_from from {table}"
        ).fetchall()
    finally:
        con.close()
    return as_of.isoformat(), rebuild_from.isoformat() if rebuild_from else None


# --- kam backfill: one real run ------------------------------------------------------------


@pytest.mark.slow
def test_kam_backfill_is_one_run_as_of_its_last_date_rebuilding_from_its_first(
    dbt_manifest: Path, demo_sources: Path, tmp_path: Path
) -> None:
    """`kam run --as-of D1` (its date built by the daily models), then `kam backfill --from
    D1 --to D2`: one run, as of D2, whose history rebuilt D1 (present, so only because of
    rebuild_from) and filled D1 + 1, published as of D2."""
    import duckdb

    data, warehouse = tmp_path / "data", tmp_path / "wh" / "kam.duckdb"
    env = {
        "KAM_DATA_DIR": str(data),
        "KAM_ERP_URL": f"sqlite:///{demo_sources / 'erp.sqlite'}",
        "KAM_CRM_URL": f"sqlite:///{demo_sources / 'crm.sqlite'}",
        "KAM_WAREHOUSE": str(warehouse),
        "DBT_TARGET_PATH": str(dbt_manifest.parent),
    }
    # the demo's 2026-09-28 revenue is outside the default band of its weekday: widened for
    # this setup run only (the backfill, as of D2, checks D2's)
    first = _kam({**env, "KAM_REVENUE_BAND_K": "1000"}, "run", "--as-of", D1, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert _history(warehouse, D1) == {(D1, "daily_run")}

    proc = _kam(env, "backfill", "--from", D1, "--to", D2, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"succeeded for {D1}..{D2} (3 days in one run" in proc.stdout
    assert f"warehouse: {warehouse} (as of {D2})" in proc.stdout

    with dg.DagsterInstance.from_config(str(data / "dagster_home")) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"kam/command": "backfill"}))
        assert len(runs) == 1, [r.tags for r in runs]
        assert len(instance.get_runs()) == 2  # kam run's and the backfill's, nothing else
        [run] = runs
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.job_name == "kam_daily"
        # the range as ONE partition D2 with the tag, never Dagster's range tags: those make
        # Dagster record every asset and check once per day of the range (745 MB for 730)
        assert run.tags["dagster/partition"] == D2 and run.tags[REBUILD_FROM] == D1
        assert RANGE_START not in run.tags and RANGE_END not in run.tags
        assert run.tags["kam/work_db"] == "writer"  # the one-writer queue limit applies
        assert instance.get_backfills() == []  # no backfill of the range claimed in the UI
        # one materialization per asset, of D2 only, as a daily run records
        materialized = instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        keys = [e.dagster_event.asset_key for e in materialized]
        assert keys and len(set(keys)) == len(keys)
        assert {e.dagster_event.partition for e in materialized} == {D2}
        assert instance.get_materialized_partitions(dg.AssetKey("warehouse")) == {D1, D2}

    # what dbt's build got: its own record of its vars, or the run parameters table its
    # macros read when the vars stay the same every day (partial parsing)
    assert _dbt_run_parameters(data) == (D2, D1)

    # every date of the range: D1 rebuilt although present, D1 + 1 filled, D2 the daily
    # models'; the dates before the range kept
    assert _history(warehouse, D1) == {
        (D1, "reconstructed"),
        (DAYS[1], "reconstructed"),
        (D2, "daily_run"),
    }
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("select as_of_date from marts.publish_info").fetchall() == [
            (date(2026, 9, 30),)
        ]
        per_date = con.execute(
            "select count(distinct client_id) from marts.client_status_history "
            "where as_of_date between ? and ? group by as_of_date",
            [D1, D2],
        ).fetchall()
        assert len(per_date) == 3 and len(set(per_date)) == 1, per_date  # same clients
        assert (
            con.execute(
                "select count(*) from marts.client_status_history where as_of_date = ?",
                ["2026-09-01"],
            ).fetchall()[0][0]
            > 0
        )
    finally:
        con.close()


def _history(warehouse: Path, since: str) -> set[tuple[str, str]]:
    """(as_of_date, history_source) of the published client_status_history from ``since``."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select distinct cast(as_of_date as varchar), history_source "
            "from marts.client_status_history where as_of_date >= ?",
            [since],
        ).fetchall()
    finally:
        con.close()
    return set(rows)
