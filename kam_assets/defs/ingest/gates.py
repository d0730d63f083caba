"""Batch-level quality gates: blocking checks on the raw assets (see
pipelines.gate.quarantine and pipelines.gate.batch_gates).

* ``quarantine_share``: the share of a table's raw rows in quarantine exceeds
  ``KAM_QUARANTINE_MAX_SHARE`` (default 1 %);
* ``not_empty``: a required table (clients, orders, order_lines) is empty in the raw
  layer or in the source;
* ``row_count_drop``: a source table has lost more than ``KAM_ROW_DROP_MAX_SHARE``
  (default 20 %) of its rows since the last accepted run.

A failure names the table, the rule and the row counts (with sample keys) in the step
log, the check's description and its ``summary`` metadata; being blocking, it stops dbt
and the publish: the warehouse is left as it was.
"""

from contextlib import closing

import dagster as dg
import duckdb

from kam_assets.defs.ingest.assets import raw_asset_key
from kam_assets.resources import KamResource
from pipelines.contract import TABLES
from pipelines.gate.batch_gates import REQUIRED_TABLES, GateResult, evaluate_gates

GATE_DESCRIPTIONS = {
    "quarantine_share": "quarantined share of the table's raw rows within KAM_QUARANTINE_MAX_SHARE",
    "not_empty": "a required table is not empty, in the raw layer nor in the source",
    "row_count_drop": (
        "the source's row count fell by at most KAM_ROW_DROP_MAX_SHARE since the last accepted run"
    ),
}


def _specs() -> list[dg.AssetCheckSpec]:
    specs = []
    for table in TABLES:
        gates = ["quarantine_share", "row_count_drop"]
        if (table.system, table.name) in REQUIRED_TABLES:
            gates.append("not_empty")
        for gate in gates:
            specs.append(
                dg.AssetCheckSpec(
                    name=gate,
                    asset=raw_asset_key(table.system, table.name),
                    description=f"[gate] {GATE_DESCRIPTIONS[gate]}",
                    blocking=True,
                )
            )
    return specs


GATE_SPECS = _specs()


def _metadata(result: GateResult) -> dict:
    metadata: dict = {"summary": dg.MetadataValue.text(result.message)}
    for key, value in result.facts.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            metadata[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            metadata[key] = dg.MetadataValue.float(value)
        elif isinstance(value, dict | list):
            metadata[key] = dg.MetadataValue.json(value)
        else:
            metadata[key] = dg.MetadataValue.text(str(value))
    return metadata


@dg.multi_asset_check(
    name="quality_gates",
    specs=GATE_SPECS,
    can_subset=True,
    description="Batch-level gates on the raw layer: quarantine share, empty tables, row drops.",
)
def quality_gates(context: dg.AssetCheckExecutionContext, kam: KamResource):
    settings = kam.settings()
    selected = context.selected_asset_check_keys
    with closing(duckdb.connect(str(settings.work_db))) as con:
        results = evaluate_gates(
            con,
            context.run.run_id,
            quarantine_max_share=settings.quarantine_max_share,
            row_drop_max_share=settings.row_drop_max_share,
        )
    passed = sum(1 for result in results if result.passed)
    context.log.info("%d of %d batch gates passed", passed, len(results))
    for result in results:
        key = raw_asset_key(result.system, result.table)
        if dg.AssetCheckKey(key, result.gate) not in selected:
            continue
        if result.passed:
            context.log.debug("gate passed: %s: %s", result.gate, result.message)
        else:
            context.log.error("gate FAILED: %s: %s", result.gate, result.message)
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=result.gate,
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=_metadata(result),
            description=None if result.passed else result.message[:1000],
        )
