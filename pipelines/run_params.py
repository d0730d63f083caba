"""The parameters of one run, derived once at the boundary and passed down.

A run is for one as-of date D (the daily partition): every fact dated after D is cut.
A backfill of a range of dates is one run as of the range's last date whose history is
rebuilt from the range's first date (``rebuild_from``).
"Today" is the calendar day in the schedule's time zone when the run's parameters are
derived (it bounds "no impossible future dates"); "has CRM" says whether a CRM source is
configured (without one, CRM-based signals are NULL, not false).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.settings import Settings


@dataclass(frozen=True)
class RunParameters:
    as_of: date
    today: date
    has_crm: bool
    #: days of client_status_history kept and reconstructed where missing (KAM_HISTORY_DAYS)
    history_days: int
    #: first date whose history rows are rebuilt even when present (a backfill), or None
    rebuild_from: date | None = None

    @classmethod
    def derive(
        cls,
        as_of: date,
        settings: Settings,
        now: datetime | None = None,
        rebuild_from: date | None = None,
    ) -> RunParameters:
        """The parameters of a run for ``as_of`` under ``settings`` (``now``: for tests);
        ``rebuild_from``: a backfill's first date (its history is rebuilt up to ``as_of``)."""
        if rebuild_from is not None and rebuild_from > as_of:
            raise ValueError(f"a backfill's first date {rebuild_from} is after its last {as_of}")
        zone = ZoneInfo(settings.schedule_timezone)
        moment = now.astimezone(zone) if now is not None else datetime.now(zone)
        return cls(
            as_of=as_of,
            today=moment.date(),
            has_crm=settings.has_crm,
            history_days=settings.history_days,
            rebuild_from=rebuild_from,
        )

    def dbt_vars(self) -> dict[str, Any]:
        """The run's dbt vars: the only way the run parameters reach the models."""
        return {
            "as_of_date": self.as_of.isoformat(),
            "has_crm": self.has_crm,
            "history_days": self.history_days,
            "rebuild_from": self.rebuild_from.isoformat() if self.rebuild_from else None,
        }


#: dbt unit tests run in the test suite, not in the daily run
DAILY_DBT_EXCLUDE = "test_type:unit"


def dbt_build_args(params: RunParameters) -> list[str]:
    """The `dbt build` of a daily run (the job's and the benchmark's): the run's vars."""
    return ["build", "--vars", json.dumps(params.dbt_vars()), "--exclude", DAILY_DBT_EXCLUDE]


def parse_as_of(text: str) -> date:
    """An as-of date from text (CLI argument, partition key); ValueError says the format."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from None


def as_of_problem(as_of: date, settings: Settings, today: date) -> str | None:
    """Why ``as_of`` cannot be run (outside the daily partitions), or None."""
    start = settings.partitions_start
    if as_of < start:
        return (
            f"as-of {as_of} is before the first daily partition, KAM_PARTITIONS_START="
            f"{start}; set KAM_PARTITIONS_START to {as_of} or earlier "
            "to run it (the history before the as-of date is read whatever this setting)"
        )
    if as_of >= today:
        return (
            f"as-of {as_of} is not a complete day yet: the last complete day in "
            f"KAM_SCHEDULE_TIMEZONE={settings.schedule_timezone} is "
            f"{(today - timedelta(days=1)).isoformat()}"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.run_params YYYY-MM-DD``: the dbt vars of a run as of that date
    under the current settings (JSON), for running dbt by hand (e.g. ``make docs``)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pipelines.run_params YYYY-MM-DD", file=sys.stderr)
        return 2
    params = RunParameters.derive(parse_as_of(args[0]), Settings.from_env())
    print(json.dumps(params.dbt_vars()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
