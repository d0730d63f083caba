"""The daily job (raw -> checks -> dbt -> mart checks -> publish) and its schedule."""

from __future__ import annotations

import dagster as dg

from pipelines.settings import Settings

DAILY_JOB = "kam_daily"
DAILY_SCHEDULE = "kam_daily_schedule"

# Only one run at a time may write the work DB. Runs carry this tag; the instance limits
# it to one concurrent run (dagster.yaml, written by `kam run` / `kam demo` into a new
# DAGSTER_HOME):
#   concurrency: {runs: {tag_concurrency_limits: [{key: "kam/work_db", limit: 1}]}}
WORK_DB_TAG = "kam/work_db"
RUN_TAGS = {WORK_DB_TAG: "writer"}


def _schedule_hour_minute(value: str) -> tuple[int, int]:
    try:
        hour, minute = (int(part) for part in value.split(":"))
    except ValueError as exc:
        raise ValueError(f"KAM_SCHEDULE_TIME must be HH:MM, got {value!r}") from exc
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"KAM_SCHEDULE_TIME must be HH:MM, got {value!r}")
    return hour, minute


def build_defs() -> dg.Definitions:
    settings = Settings.from_env()
    kam_daily = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all(),
        executor_def=dg.in_process_executor,  # multiprocess costs ~2x on this graph
        tags=RUN_TAGS,
        description=(
            "Extract ERP/CRM into the raw layer, check it, dbt build for the as-of date "
            "(the partition), check the marts, publish the warehouse."
        ),
    )
    hour, minute = _schedule_hour_minute(settings.schedule_time)
    # A daily-partitioned schedule runs the partition of the day that just ended.
    schedule = dg.build_schedule_from_partitioned_job(
        kam_daily,
        name=DAILY_SCHEDULE,
        hour_of_day=hour,
        minute_of_hour=minute,
        tags=RUN_TAGS,
    )
    return dg.Definitions(jobs=[kam_daily], schedules=[schedule])
