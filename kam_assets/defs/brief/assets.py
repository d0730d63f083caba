"""``manager_brief``: one HTML page per manager and an index, from the published warehouse.

Runs after ``warehouse`` in the daily job and reads what was published (never the work
DB), so the brief shows exactly what BI tools show. Its metadata summarises the brief and
names its files (browsers refuse ``file://`` links from a web page, so paths are text).
"""

import dagster as dg

from kam_assets.partitions import BACKFILL_POLICY, daily_partitions, run_parameters
from kam_assets.resources import KamResource
from pipelines.brief.build import build_briefs
from pipelines.brief.mail import Delivery, deliver_pending, read_recipients
from pipelines.settings import Settings


@dg.asset(
    key=["manager_brief"],
    deps=[dg.AssetKey(["warehouse"])],
    partitions_def=daily_partitions(),
    backfill_policy=BACKFILL_POLICY,
    group_name="publish",
    kinds={"html"},
    description=(
        "The daily brief per manager ($KAM_DATA_DIR/briefs/<as_of>/<manager>.html and "
        "index.html), self-contained HTML read from the published warehouse: key accounts "
        "at risk, open actions, win-back candidates, what changed, stage and revenue charts."
    ),
)
def manager_brief(context: dg.AssetExecutionContext, kam: KamResource) -> dg.MaterializeResult:
    settings = kam.settings()
    params = run_parameters(context, settings)
    result = build_briefs(
        settings.warehouse,
        settings.briefs_dir,
        as_of=params.as_of,
        retention_days=settings.report_retention_days,
    )
    at_risk = sum(c["at_risk"] for c in result.counts.values())
    actions = sum(c["actions"] for c in result.counts.values())
    context.log.info(result.describe())
    delivery = _deliver(settings, context.log)
    return dg.MaterializeResult(
        metadata={
            **_delivery_metadata(settings, delivery),
            "index": dg.MetadataValue.path(str(result.index)),
            "folder": dg.MetadataValue.path(str(result.folder)),
            "managers": dg.MetadataValue.int(len(result.managers)),
            "key_accounts_at_risk": dg.MetadataValue.int(at_risk),
            "open_actions": dg.MetadataValue.int(actions),
            "per_manager": dg.MetadataValue.md(_per_manager_table(result.counts)),
            "compared_with": dg.MetadataValue.text(
                str(result.previous_date) if result.previous_date else "nothing (first day)"
            ),
            "bytes": dg.MetadataValue.int(result.bytes),
            "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
            "folders_removed": dg.MetadataValue.int(len(result.removed_folders)),
        }
    )


def _per_manager_table(counts: dict[str, dict[str, int]]) -> str:
    lines = ["| manager | at risk | actions | win-back | changes |", "|---|---|---|---|---|"]
    for manager, c in counts.items():
        lines.append(
            f"| {manager} | {c['at_risk']} | {c['actions']} | {c['winback']} | {c['changes']} |"
        )
    return "\n".join(lines)


def _deliver(settings: Settings, log) -> Delivery | None:
    """E-mail what is not sent yet (this brief, and earlier ones whose delivery failed).
    Never fails the run: the brief is written and the warehouse published already."""
    if not settings.smtp_url or not settings.brief_sender:
        return None
    try:
        recipients = read_recipients(settings.brief_recipients) if settings.brief_recipients else {}
        delivery = deliver_pending(
            settings.briefs_dir, settings.smtp_url, settings.brief_sender, recipients
        )
    except Exception as exc:  # a bad recipients file, an unreadable folder: report it
        log.warning(f"brief e-mail not sent ({type(exc).__name__}: {exc}); next run retries")
        return Delivery(failed={"*": f"{type(exc).__name__}: {exc}"})
    for key, error in delivery.failed.items():
        log.warning(f"brief e-mail for {key} failed, next run retries: {error}")
    if delivery.sent:
        log.info(f"brief e-mailed: {', '.join(delivery.sent)}")
    return delivery


def _delivery_metadata(settings: Settings, delivery: Delivery | None) -> dict:
    if delivery is None:
        return {"emails": dg.MetadataValue.text("off (KAM_SMTP_URL unset)")}
    return {
        "emails_sent": dg.MetadataValue.int(len(delivery.sent)),
        "emails_failed": dg.MetadataValue.json(delivery.failed),
        "emails_without_address": dg.MetadataValue.json(delivery.skipped),
    }
