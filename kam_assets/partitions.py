"""The daily partitions shared by every asset of the daily job, and the run's parameters.

The partition key is the as-of date of the run (a day is complete once it is over). Steps
get the run's :class:`~pipelines.run_params.RunParameters` from :func:`run_parameters`: the
as-of date from the partition key, "today" from the moment the run was created (so every
step of one run agrees on it), has-CRM from the settings; derived once per run and reused
by its other steps.

A backfill of a range of dates D1..D2 is ONE run, as-of D2 (extraction and marts as of the
range's last date) with ``rebuild_from`` D1 (the history models rebuild every date of the
range), in one of two forms:

* ``kam backfill`` (or a run of partition D2 launched in the UI with the tag
  ``kam/rebuild_from`` = D1, :data:`REBUILD_FROM_TAG`): a run of the ONE partition D2. Its
  events in Dagster's storage are those of a daily run, whatever the range (~3 MB).
* the UI's backfill of a range of partitions (every asset of the daily job has a
  single-run backfill policy, :data:`BACKFILL_POLICY`): Dagster tags the run with the range
  (``dagster/asset_partition_range_start`` / ``_end``, no ``dagster/partition``) and records
  one materialization per asset AND day, and one planned check row per check and day:
  ~1.2 MB of Dagster storage per day of the range (61 assets, 272 checks; a 730-day
  range: 745 MB), which is why ``kam backfill`` uses the first form.

Both are read from the run's tags, as Dagster itself does, so unpartitioned steps of the
run (asset checks) get the same parameters as the partitioned ones.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, date, datetime
from functools import lru_cache

import dagster as dg

from pipelines.run_params import RunParameters, parse_as_of
from pipelines.settings import Settings

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
#: on a run of one partition D2: rebuild ``client_status_history`` from this date (a
#: backfill of its range in one run, recorded as the one partition D2, see module doc)
REBUILD_FROM_TAG = "kam/rebuild_from"

#: every asset of the daily job: a backfill of any range is one run (as of its last date,
#: history rebuilt from its first); one as-of date per run would cost a full run per day
BACKFILL_POLICY = dg.BackfillPolicy.single_run()


@lru_cache(maxsize=1)
def daily_partitions() -> dg.DailyPartitionsDefinition:
    settings = Settings.from_env()
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start.isoformat(),
        timezone=settings.schedule_timezone,
    )


def backfill_range_tags(first: date, last: date) -> dict[str, str]:
    """The tags Dagster gives a single-run backfill of the partitions ``first``..``last``."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def backfill_tags(first: date, last: date) -> dict[str, str]:
    """The tags of a run of the partition ``last`` that rebuilds the history from
    ``first``: the range in one run, with the storage of one partition (module doc)."""
    return {PARTITION_TAG: last.isoformat(), REBUILD_FROM_TAG: first.isoformat()}


def _parse(key: str, what: str) -> date:
    try:
        return parse_as_of(key)
    except ValueError as exc:
        raise dg.Failure(f"the run's {what} is {exc}") from None


def partition_dates(
    context: dg.OpExecutionContext | dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[date, date, bool]:
    """(first, last, is_range): the run's partition (first == last), its partition with the
    tag ``kam/rebuild_from`` (first = the tag's date), or its backfilled range."""
    tags = context.run.tags
    key = tags.get(PARTITION_TAG)
    if key is not None:
        day = _parse(key, "partition key")
        since = tags.get(REBUILD_FROM_TAG)
        if since is None:
            return day, day, False
        first = _parse(since, f"tag {REBUILD_FROM_TAG}")
        if first > day:
            raise dg.Failure(
                f"the run's tag {REBUILD_FROM_TAG}={since} is after its partition {key}: "
                "the history is rebuilt from a date up to the as-of date"
            )
        return first, day, True
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start is not None and end is not None:
        first, last = _parse(start, "partition range start"), _parse(end, "partition range end")
        if first > last:
            raise dg.Failure(f"the run's partition range {start}..{end} ends before it starts")
        return first, last, True
    raise dg.Failure(
        "the run has no partition: pass the as-of date as the partition key "
        "(or a range of dates, as a backfill does)"
    )


def _run_created(
    context: dg.OpExecutionContext | dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> datetime | None:
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is None or record.create_timestamp is None:
        return None
    created = record.create_timestamp
    return created if created.tzinfo else created.replace(tzinfo=UTC)


#: the parameters of the runs this process executed lately, derived once per run (every
#: step of a run reads the same object; an in-process run's steps share the process)
_DERIVED: OrderedDict[tuple, RunParameters] = OrderedDict()
_DERIVED_KEPT = 8


def run_parameters(
    context: dg.OpExecutionContext | dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    settings: Settings,
) -> RunParameters:
    """The run's parameters (also for unpartitioned check steps of a partitioned run): as-of
    the partition; for a backfilled range, as-of its last date, rebuilt from its first.
    Derived once per run (its id, partition tags and the settings they depend on) and
    reused by the run's other steps."""
    tags = context.run.tags
    key = (
        context.run.run_id,
        tuple(
            tags.get(tag)
            for tag in (PARTITION_TAG, REBUILD_FROM_TAG, RANGE_START_TAG, RANGE_END_TAG)
        ),
        settings.schedule_timezone,
        settings.has_crm,
        settings.history_days,
    )
    params = _DERIVED.get(key)
    if params is None:
        first, last, is_range = partition_dates(context)
        params = RunParameters.derive(
            last, settings, now=_run_created(context), rebuild_from=first if is_range else None
        )
        _DERIVED[key] = params
        while len(_DERIVED) > _DERIVED_KEPT:
            _DERIVED.popitem(last=False)
    return params
