"""The daily partitions shared by every asset of the daily job: the partition key is the
as-of date of the run (a day is complete once it is over)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import dagster as dg

from pipelines.settings import Settings

PARTITION_TAG = "dagster/partition"


@lru_cache(maxsize=1)
def daily_partitions() -> dg.DailyPartitionsDefinition:
    settings = Settings.from_env()
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start,
        timezone=settings.schedule_timezone,
    )


def as_of_date(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> date:
    """The run's as-of date: its partition key (also for unpartitioned check steps)."""
    key = context.run.tags.get(PARTITION_TAG)
    if key is None and context.has_partition_key:
        key = context.partition_key
    if key is None:
        raise dg.Failure("the run has no partition: pass the as-of date as the partition key")
    return date.fromisoformat(key)
