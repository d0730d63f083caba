"""Extraction of both sources into the raw layer of the work DB (one step, all tables),
then the quarantine of bad rows (``pipelines.gate.quarantine``): dbt reads ``valid_*`` views."""

from contextlib import closing

import dagster as dg
import duckdb

from kam_assets.partitions import BACKFILL_POLICY, daily_partitions, run_parameters
from kam_assets.resources import KamResource
from pipelines.contract import TABLES
from pipelines.extract.raw_loader import extract_all
from pipelines.extract.raw_schema import raw_table_name
from pipelines.gate.quarantine import apply_quarantine
from pipelines.gate.row_rules import row_rules
from pipelines.secrets import mask_url

RAW_GROUP = "raw"


def raw_asset_key(system: str, table: str) -> dg.AssetKey:
    return dg.AssetKey([system, table])


RAW_SPECS = [
    dg.AssetSpec(
        key=raw_asset_key(t.system, t.name),
        description=f"{t.description} Raw table {raw_table_name(t)} in the work DB.",
        group_name=RAW_GROUP,
        kinds={"duckdb"},
        metadata={"primary_key": ", ".join(t.primary_key), "raw_table": raw_table_name(t)},
        partitions_def=daily_partitions(),
    )
    for t in TABLES
]


def _iso(value) -> str | None:
    return value.isoformat(sep=" ") if value is not None else None


@dg.multi_asset(
    name="extract_sources",
    specs=RAW_SPECS,
    backfill_policy=BACKFILL_POLICY,
    description=(
        "Checks both source contracts, loads them incrementally into the raw layer, then "
        "quarantines bad rows (audit.quarantine); dbt reads the valid_* views."
    ),
)
def extract_sources(context: dg.AssetExecutionContext, kam: KamResource):
    settings = kam.settings()
    if not settings.erp_url:
        raise dg.Failure("KAM_ERP_URL is not set: the ERP source is required")
    params = run_parameters(context, settings)
    context.log.info(
        "as-of %s: extracting ERP %s, CRM %s into %s",
        params.as_of.isoformat(),
        mask_url(settings.erp_url),
        mask_url(settings.crm_url) if settings.crm_url else "(not configured)",
        settings.work_db,
    )
    loads = extract_all(
        settings.work_db,
        settings.erp_url,
        settings.crm_url,
        context.run.run_id,
        settings.chunk_rows,
        clock_skew_minutes=settings.clock_skew_minutes,
        csv_encoding=settings.csv_encoding,
        # key reconciliation never removes more of a table than the row-count gate accepts
        max_delete_share=settings.row_drop_max_share,
        reconcile_max_rows=settings.delete_check_max_rows,
        crm_removed=settings.crm_removed,
    )
    with closing(duckdb.connect(str(settings.work_db))) as con:
        summary = apply_quarantine(
            con,
            context.run.run_id,
            params.as_of,
            today=params.today,
            rules=row_rules(max_line_amount=settings.max_line_amount),
            deleted_retention_days=settings.audit_retention_days,
        )
    for line in summary.log_lines():
        context.log.info(line)
    rules: dict[tuple[str, str], dict[str, int]] = {}
    for count in summary.by_rule():
        rules.setdefault((count.system, count.table), {})[count.rule] = count.quarantined_rows
    for load in loads:
        total = summary.total(load.system, load.table)
        yield dg.MaterializeResult(
            asset_key=raw_asset_key(load.system, load.table),
            metadata={
                "source_rows": load.source_rows,
                # raw rows + rows kept aside as unreadable: the quarantined share's base
                "table_rows": dg.MetadataValue.int(total.table_rows),
                "quarantined_rows": dg.MetadataValue.int(total.quarantined_rows),
                "quarantined_share": dg.MetadataValue.float(round(total.share, 6)),
                "quarantined_by_rule": dg.MetadataValue.json(
                    rules.get((load.system, load.table), {})
                ),
                "quarantine_sample_keys": dg.MetadataValue.json(list(total.sample_keys)),
                "rows_read": dg.MetadataValue.int(load.rows_read),
                "rows_upserted": dg.MetadataValue.int(load.rows_upserted),
                "rows_deleted": dg.MetadataValue.int(load.rows_deleted),
                "rows_rejected_unreadable": dg.MetadataValue.int(load.rows_rejected),
                "rows_duplicate_key": dg.MetadataValue.int(load.rows_duplicate),
                "rows_deleted_at_source": dg.MetadataValue.int(load.rows_gone),
                "watermark_before": _iso(load.watermark_before),
                "watermark_after": _iso(load.watermark_after),
                "seconds": dg.MetadataValue.float(round(load.seconds, 3)),
                "work_db": dg.MetadataValue.path(str(settings.work_db)),
            },
        )
