"""The daily partitions shared by every asset of the daily job, and the run's parameters.

The partition key is the as-of date of the run (a day is complete once it is over). Steps
get the run's :class:`~pipelines.run_params.RunParameters` from :func:`run_parameters`: the
as-of date from the partition key, "today" from the moment the run was created (so every
step of one run agrees on it), has-CRM from the settings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import dagster as dg

from pipelines.run_params import RunParameters, parse_as_of
from pipelines.settings import Settings

PARTITION_TAG = "dagster/partition"


@lru_cache(maxsize=1)
def daily_partitions() -> dg.DailyPartitionsDefinition:
    settings = Settings.from_env()
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start.isoformat(),
        timezone=settings.schedule_timezone,
    )


def _partition_key(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> str:
    key = context.run.tags.get(PARTITION_TAG)
    if key is None and context.has_partition_key:
        key = context.partition_key
    if key is None:
        raise dg.Failure("the run has no partition: pass the as-of date as the partition key")
    return key


def _run_created(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> datetime | None:
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is None or record.create_timestamp is None:
        return None
    created = record.create_timestamp
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def run_parameters(
    context: dg.OpExecutionContext | dg.AssetExecutionContext, settings: Settings
) -> RunParameters:
    """The run's parameters (also for unpartitioned check steps of a partitioned run)."""
    as_of = parse_as_of(_partition_key(context))
    return RunParameters.derive(as_of, settings, now=_run_created(context))
