"""What `kam run` reads from a finished Dagster run (kam_assets/cli/runner.py outcome_of).

Dagster calls a run a success when a step did not yield one of its outputs: it skips the
steps that need that output, the publish among them, and the run still succeeds
(dagster-io/dagster #22242). In CI on 2026-12-07 a dbt result line was lost that way and
`kam run` exited 0 having published nothing. These are real in-process Dagster runs of a
step shaped like dagster-dbt's (a subsettable multi-asset whose outputs may be skipped).
"""

import dagster as dg

from kam_assets.cli.runner import outcome_of


@dg.multi_asset(
    specs=[dg.AssetSpec("built", skippable=True), dg.AssetSpec("lost", skippable=True)],
    can_subset=True,
)
def two_models(context: dg.AssetExecutionContext):
    # as dagster-dbt does when a dbt result line cannot be read: "lost" is never yielded
    if dg.AssetKey("built") in context.selected_asset_keys:
        yield dg.Output(None, output_name="built")


@dg.asset(deps=["lost"])
def publish() -> None:
    pass


@dg.asset(deps=["built"])
def report() -> None:
    pass


def test_a_skipped_step_is_not_a_success() -> None:
    result = dg.materialize([two_models, publish, report], raise_on_error=False)
    assert result.success  # Dagster's word
    outcome = outcome_of(result)
    assert not outcome.success
    assert [step for step, _ in outcome.failures] == ["publish"]
    assert "did not produce one of its inputs" in outcome.failures[0][1]


def test_a_complete_run_is_a_success() -> None:
    result = dg.materialize(
        [two_models, report], raise_on_error=False, selection=["built", "report"]
    )
    outcome = outcome_of(result)
    assert result.success and outcome.success and outcome.failures == []


def test_dbt_step_names_the_models_without_a_result() -> None:
    from kam_assets.defs.transform.assets import unreported_models

    selected = {dg.AssetKey(["marts", "a"]), dg.AssetKey(["marts", "b"]), dg.AssetKey(["s", "c"])}
    assert unreported_models(selected, {dg.AssetKey(["marts", "a"])}) == ["marts/b", "s/c"]
    assert unreported_models(selected, selected) == []
