"""The code location loads, and its graph is wired as documented."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from pipelines.contract import TABLES


def test_definitions_load_with_job_schedule_and_resources(kam_defs) -> None:
    job = kam_defs.resolve_job_def("kam_daily")
    assert job.executor_def.name == "in_process"
    assert job.partitions_def is not None
    assert job.tags.get("kam/work_db") == "writer"
    schedule = kam_defs.resolve_schedule_def("kam_daily_schedule")
    assert schedule.job_name == "kam_daily"
    assert schedule.cron_schedule == "0 6 * * *"  # KAM_SCHEDULE_TIME default 06:00
    assert set(kam_defs.resources) >= {"kam", "dbt"}


def test_schedule_targets_previous_day(kam_defs) -> None:
    schedule = kam_defs.resolve_schedule_def("kam_daily_schedule")
    when = datetime(2026, 10, 1, 6, 0, tzinfo=ZoneInfo("UTC"))
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        data = schedule.evaluate_tick(context)
    assert [r.partition_key for r in data.run_requests] == ["2026-09-30"]


def test_raw_assets_feed_dbt_sources(kam_defs) -> None:
    graph = kam_defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    raw_keys = {dg.AssetKey([t.system, t.name]) for t in TABLES}
    assert raw_keys <= keys
    # every raw asset comes from the one extraction step
    assert {graph.get(k).assets_def.node_def.name for k in raw_keys} == {"extract_sources"}
    # every dbt source is a raw asset (no dangling / duplicate source keys)
    staging = [k for k in keys if k.path[0] == "staging"]
    assert staging, "no staging models in the graph"
    parents = {p for k in staging for p in graph.get(k).parent_keys}
    assert parents <= raw_keys | {k for k in keys if k.path[0] == "seeds"}
    assert raw_keys - parents == set(), f"raw tables no staging model reads: {raw_keys - parents}"
    # no asset without a definition (an external key would be a broken mapping)
    assert all(graph.get(k).is_materializable for k in keys)
    # everything is daily-partitioned the same way
    partitions = {graph.get(k).partitions_def for k in keys}
    assert len(partitions) == 1 and isinstance(partitions.pop(), dg.DailyPartitionsDefinition)


def test_every_mart_has_blocking_gx_checks(kam_defs) -> None:
    graph = kam_defs.resolve_asset_graph()
    marts = {k for k in graph.get_all_asset_keys() if k.path[0] == "marts"}
    expected = {
        "dim_clients",
        "fct_orders",
        "client_abc",
        "client_churn_signals",
        "client_lifecycle",
        "client_status_history",
        "winback_candidates",
        "kam_actions",
        "manager_portfolio",
        "key_account_value",
    }
    assert {k.path[-1] for k in marts} >= expected
    gx_specs = [
        spec
        for checks_def in kam_defs.asset_checks or []
        for spec in checks_def.check_specs
        if checks_def.node_def.name == "mart_quality_checks"
    ]
    checked = {spec.asset_key for spec in gx_specs}
    assert {dg.AssetKey(["marts", name]) for name in expected} <= checked
    assert all(spec.blocking for spec in gx_specs)
    names = {(s.asset_key.path[-1], s.name) for s in gx_specs}
    assert ("client_abc", "revenue_shares_sum_to_one") in names
    assert ("winback_candidates", "new_manager_suggested") in names
    assert ("fct_orders", "no_order_after_as_of") in names


def test_raw_assets_have_blocking_gx_checks(kam_defs) -> None:
    specs = [
        spec
        for checks_def in kam_defs.asset_checks or []
        if checks_def.node_def.name == "raw_quality_checks"
        for spec in checks_def.check_specs
    ]
    assert all(spec.blocking for spec in specs)
    checked = {spec.asset_key for spec in specs}
    assert checked == {dg.AssetKey([t.system, t.name]) for t in TABLES}
    assert dg.AssetCheckKey(dg.AssetKey(["erp", "orders"]), "references_exist") in {
        spec.key for spec in specs
    }


def test_dbt_tests_are_asset_checks(kam_defs) -> None:
    graph = kam_defs.resolve_asset_graph()
    dim = dg.AssetKey(["marts", "dim_clients"])
    dbt_checks = [k for k in graph.asset_check_keys if k.asset_key == dim]
    assert any("unique" in k.name for k in dbt_checks)


def test_publish_depends_on_every_mart(kam_defs) -> None:
    graph = kam_defs.resolve_asset_graph()
    marts = {k for k in graph.get_all_asset_keys() if k.path[0] == "marts"}
    assert graph.get(dg.AssetKey(["warehouse"])).parent_keys == marts


def test_daily_dbt_build_excludes_unit_tests_and_keeps_its_vars_stable() -> None:
    """The daily job's dbt build: unit tests excluded, and vars that do not change with the
    as-of date (the date comes from kam_run.run_parameters), so dbt's partial parse holds."""
    import json
    from datetime import date

    from pipelines.run_params import RUN_PARAMETERS_TABLE, RunParameters, dbt_daily_build_args

    def build_vars(as_of: date) -> dict:
        params = RunParameters(
            as_of=as_of, today=date(2026, 10, 1), has_crm=False, history_days=730
        )
        args = dbt_daily_build_args(params)
        assert args[0] == "build"
        assert args[args.index("--exclude") + 1] == "test_type:unit"
        return json.loads(args[args.index("--vars") + 1])

    first, next_day = build_vars(date(2026, 9, 29)), build_vars(date(2026, 9, 30))
    assert first == next_day == {"has_crm": False, "run_parameters_table": RUN_PARAMETERS_TABLE}


def test_dbt_build_by_hand_passes_every_run_parameter_as_a_var() -> None:
    import json
    from datetime import date

    from pipelines.run_params import RunParameters, dbt_build_args

    params = RunParameters(
        as_of=date(2026, 9, 30), today=date(2026, 10, 1), has_crm=False, history_days=730
    )
    args = dbt_build_args(params)
    assert json.loads(args[args.index("--vars") + 1]) == {
        "as_of_date": "2026-09-30",
        "has_crm": False,
        "history_days": 730,
        "rebuild_from": None,
    }


def test_resource_reads_environment_at_run_time(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from kam_assets.resources import KamResource

    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KAM_ERP_URL", "sqlite:///erp.sqlite")
    monkeypatch.delenv("KAM_WAREHOUSE", raising=False)
    settings = KamResource().settings()
    assert settings.erp_url == "sqlite:///erp.sqlite"
    assert settings.work_db == tmp_path.resolve() / "work" / "kam_work.duckdb"
    other = KamResource(data_dir=str(tmp_path / "x"), erp_url="sqlite:///other.sqlite").settings()
    assert other.erp_url == "sqlite:///other.sqlite"
    assert other.warehouse == str((tmp_path / "x").resolve() / "warehouse" / "kam.duckdb")


def test_no_declared_mart_check_is_silently_dropped(kam_defs) -> None:
    """A mart check applies only when its mart and columns are in the manifest: a renamed
    column must fail here rather than quietly remove a gate."""
    from kam_assets.defs.publish.marts import mart_checks
    from pipelines.quality.mart_checks import MART_CHECKS

    declared = {(c.relation, c.name) for c in MART_CHECKS}
    applied = {(c.relation, c.name) for c, _ in mart_checks()}
    assert declared - applied == set()
