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
from pathlib import Path
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
    #: the currency written after amounts in reason texts (KAM_CURRENCY), or None
    currency: str | None = None

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
            currency=settings.currency,
        )

    def dbt_vars(self) -> dict[str, Any]:
        """Every run parameter as a dbt var (dbt by hand, ``make docs``, the benchmark, the
        dbt tests): a var given wins over :data:`RUN_PARAMETERS_TABLE` in the macros."""
        return {
            "as_of_date": self.as_of.isoformat(),
            "has_crm": self.has_crm,
            "history_days": self.history_days,
            "rebuild_from": self.rebuild_from.isoformat() if self.rebuild_from else None,
            **self._currency_var(),
        }

    def _currency_var(self) -> dict[str, Any]:
        """The currency as a dbt var, only when set: the daily run's vars stay those of the
        packaged partial parse otherwise (a var changed re-parses the whole project)."""
        return {"currency": self.currency} if self.currency else {}

    def table_row(self) -> dict[str, Any]:
        """The run's row of :data:`RUN_PARAMETERS_TABLE` (column -> value)."""
        return {
            "as_of_date": self.as_of,
            "today": self.today,
            "has_crm": self.has_crm,
            "history_days": self.history_days,
            "rebuild_from": self.rebuild_from,
        }

    def stable_dbt_vars(self) -> dict[str, Any]:
        """The dbt vars of the daily run: only what does not change from one day to the next
        (dbt re-parses the whole project when its command-line vars change). The as-of date,
        the history window and a backfill's first date reach the models through
        :data:`RUN_PARAMETERS_TABLE` (the macros of dbt/macros/run_parameters.sql read it).
        ``has_crm`` stays a var: it decides the SQL's shape in Jinja, before any query; so
        does the currency when set (it is written into the reason texts' SQL)."""
        return {
            "has_crm": self.has_crm,
            "run_parameters_table": RUN_PARAMETERS_TABLE,
            **self._currency_var(),  # in the SQL's text, like has_crm
        }


#: dbt unit tests run in the test suite, not in the daily run
DAILY_DBT_EXCLUDE = "test_type:unit"

#: the one-row table of the run's parameters in the work DB, written right before dbt runs
RUN_PARAMETERS_TABLE = "kam_run.run_parameters"


def dbt_build_args(params: RunParameters) -> list[str]:
    """A `dbt build` with every run parameter as a var (the benchmark's, by hand, e.g.
    ``make docs``): dbt re-parses the project whenever the as-of date changes."""
    return ["build", "--vars", json.dumps(params.dbt_vars()), "--exclude", DAILY_DBT_EXCLUDE]


def dbt_daily_build_args(params: RunParameters) -> list[str]:
    """The `dbt build` of the daily job: the same build as :func:`dbt_build_args`, but its
    vars are the same every day, so dbt's partial parsing (``partial_parse.msgpack`` in the
    data dir's target) is reused; the parameters come from :func:`write_run_parameters`."""
    return [
        "build",
        "--vars",
        json.dumps(params.stable_dbt_vars(), sort_keys=True),
        "--exclude",
        DAILY_DBT_EXCLUDE,
    ]


def write_run_parameters(work_db: str | Path, params: RunParameters) -> None:
    """Replace :data:`RUN_PARAMETERS_TABLE` in ``work_db`` by the run's one row (before dbt
    runs; the connection is closed on return, so dbt can take the write lock)."""
    import duckdb

    schema, _, _table = RUN_PARAMETERS_TABLE.partition(".")
    row = params.table_row()
    with duckdb.connect(str(work_db)) as con:
        con.execute(f"create schema if not exists {schema}")
        con.execute(
            f"create or replace table {RUN_PARAMETERS_TABLE} ("
            "as_of_date date not null, today date not null, has_crm boolean not null, "
            "history_days integer not null, rebuild_from date, "
            "written_at timestamp with time zone not null)"
        )
        con.execute(
            f"insert into {RUN_PARAMETERS_TABLE} values (?, ?, ?, ?, ?, current_timestamp)",
            [row[k] for k in ("as_of_date", "today", "has_crm", "history_days", "rebuild_from")],
        )


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
