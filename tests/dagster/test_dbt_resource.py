"""The dbt step's fast path, without running dbt: no `dbt --version` and no in-process adapter
per command (KamDbtCliResource), the daily vars stable from day to day, the condensed
progress lines."""

from __future__ import annotations

import inspect
import io
import json
from datetime import date

import pytest
from dagster_dbt import DbtCliResource

from pipelines.run_params import (
    RUN_PARAMETERS_TABLE,
    RunParameters,
    dbt_daily_build_args,
    write_run_parameters,
)


def _params(as_of: str, rebuild_from: str | None = None) -> RunParameters:
    return RunParameters(
        as_of=date.fromisoformat(as_of),
        today=date(2026, 10, 1),
        has_crm=True,
        history_days=730,
        rebuild_from=date.fromisoformat(rebuild_from) if rebuild_from else None,
    )


def test_daily_vars_are_the_same_every_day_and_name_the_table() -> None:
    first = dbt_daily_build_args(_params("2026-09-29"))
    other_day = dbt_daily_build_args(_params("2026-09-30", rebuild_from="2026-09-20"))
    assert first == other_day  # dbt re-parses the whole project when --vars change
    assert first[0] == "build"
    assert first[first.index("--exclude") + 1] == "test_type:unit"
    assert json.loads(first[first.index("--vars") + 1]) == {
        "has_crm": True,
        "run_parameters_table": RUN_PARAMETERS_TABLE,
    }


def test_run_parameters_table_holds_the_run_one_row(tmp_path) -> None:
    import duckdb

    db = tmp_path / "work.duckdb"
    write_run_parameters(db, _params("2026-09-29"))
    write_run_parameters(db, _params("2026-09-30", rebuild_from="2026-09-20"))
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            f"select as_of_date, has_crm, history_days, rebuild_from from {RUN_PARAMETERS_TABLE}"
        ).fetchall()
    assert rows == [(date(2026, 9, 30), True, 730, date(2026, 9, 20))]


def test_dagster_dbt_still_has_the_members_the_resource_overrides() -> None:
    """KamDbtCliResource overrides two private members of DbtCliResource; a dagster-dbt
    that renames them would silently bring the pre-work back."""
    source = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in source
    assert "self._initialize_dbt_core_adapter(" in source
    assert "_cli_version" in vars(DbtCliResource)


def test_resource_knows_the_dbt_version_without_running_dbt(
    dbt_manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import version

    import dagster_dbt.core.resource as dagster_dbt_resource

    from kam_assets.resources import KamDbtCliResource, build_resources

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"dbt was run to learn its version: {args}")

    monkeypatch.setattr(dagster_dbt_resource, "check_output", no_subprocess)
    dbt = build_resources()["dbt"]
    assert isinstance(dbt, KamDbtCliResource)
    assert str(dbt._cli_version) == version("dbt-core")
    assert dbt._initialize_dbt_core_adapter(["build"]) is None


def test_progress_counts_models_and_tests_apart(dbt_manifest) -> None:
    from kam_assets.defs.transform.dbt_output import DbtOutput

    said: list[str] = []
    out = DbtOutput(io.StringIO(), said.append, models=3, tests=2)
    lines = [
        "Unable to do partial parsing because config vars, config profile, or config target"
        " have changed",
        "1 of 6 START sql view model staging.stg_erp__orders ........ [RUN]",
        "1 of 6 OK created sql view model staging.stg_erp__orders ... [\x1b[32mOK\x1b[0m in 0.1s]",
        "2 of 6 START seed file seeds.segment_policy ................ [RUN]",
        "2 of 6 OK loaded seed file seeds.segment_policy ............ [INSERT 5 in 0.1s]",
        "3 of 6 START test unique_stg_erp__orders_order_id .......... [RUN]",
        "3 of 6 PASS unique_stg_erp__orders_order_id ................ [PASS in 0.1s]",
        "4 of 6 START test not_null_stg_erp__orders_order_date ...... [RUN]",
        "4 of 6 FAIL 2 not_null_stg_erp__orders_order_date .......... [FAIL 2 in 0.1s]",
        "5 of 6 SKIP relation marts.fct_orders ...................... [SKIP]",
        "6 of 6 NO-OP exposure kam_dashboard ........................ [NO-OP in 0.0s]",
    ]
    out.write("\n".join(lines) + "\n")
    assert said[0].startswith("dbt: Unable to do partial parsing") and out.reparsed
    progress = [s for s in said if "models" in s]
    assert progress[-1] == "dbt: 3/3 models, 2/2 tests"
    assert "dbt: 1/3 models, 0/2 tests" in progress  # after 1 of 6
    assert any("FAIL 2 not_null_stg_erp__orders_order_date" in s for s in said)
    assert len(progress) <= 10


def test_progress_without_expected_counts_gives_the_overall_count(dbt_manifest) -> None:
    from kam_assets.defs.transform.dbt_output import DbtOutput

    said: list[str] = []
    out = DbtOutput(io.StringIO(), said.append)
    out.write("1 of 1 START test t ... [RUN]\n1 of 1 PASS t ... [PASS in 0.1s]\n")
    assert said == ["dbt: 1/1 models and tests done"]
