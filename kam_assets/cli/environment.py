"""The process environment of a `kam` command: the Dagster instance, dbt's variables, the
dbt manifest. Done once per command, before the definitions load; never at import."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pipelines.settings import Settings

_DAGSTER_YAML = """\
# Written by `kam`: one run at a time writes the work DB (runs of kam_daily carry this tag).
concurrency:
  runs:
    tag_concurrency_limits:
      - key: "kam/work_db"
        limit: 1
telemetry:
  enabled: false
# no "Join the Dagster community" sign-up modal over the UI of a new instance
nux:
  enabled: false
# Dagster's SQLite event log, keeping its connections (kam_assets/instance_storage.py):
# 1.6 ms per event instead of 8.7 ms (~1,000 events a daily run). Runs, schedules: defaults.
event_log_storage:
  module: kam_assets.instance_storage
  class: KamSqliteEventLogStorage
  config:
    base_dir: {home}
"""


def dagster_yaml(home: Path) -> str:
    """kam's dagster.yaml for the instance folder ``home`` (its path is written in: a
    process that opens the instance without DAGSTER_HOME set finds the event log too)."""
    return _DAGSTER_YAML.format(home=json.dumps(str(home.resolve())))  # YAML-quoted


#: the first line of every dagster.yaml `kam` wrote: such a file is kam's to update
_WRITTEN_BY_KAM = "# Written by `kam`"


def ensure_dagster_home(settings: Settings) -> Path:
    """The instance folder (DAGSTER_HOME, default $KAM_DATA_DIR/dagster_home), with kam's
    dagster.yaml; exported so that Dagster and every child process use it.

    A dagster.yaml that an older `kam` wrote, or one written before the folder moved, is
    brought up to date (same runs and events: only the instance's settings change); one
    written by anybody else is left as it is."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = dagster_yaml(home)
    if not config.exists():
        config.write_text(wanted)
    else:
        text = config.read_text()
        if text.startswith(_WRITTEN_BY_KAM) and text != wanted:
            config.write_text(wanted)  # an older kam's, or a folder moved since
    os.environ["DAGSTER_HOME"] = str(home)
    return home


#: a run of a backfilled range logs ONE "materialization planned" event per asset (with the
#: range) instead of one per asset and day: a 365-day backfill otherwise writes ~20,000
#: of them into the instance's SQLite event log before its first step (10 minutes on 2
#: busy cores). Dagster's trade-off: when such a run fails, the UI shows its days as not
#: materialized rather than failed (the run itself shows the failure). An explicit value
#: in the environment wins.
PLANNED_EVENTS_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def prepare_process_env(settings: Settings) -> None:
    """dbt reads its profile from the environment; the venv's executables go on PATH;
    backfilled ranges log compact planned events (:data:`PLANNED_EVENTS_ENV`)."""
    # dbt must write the same work DB the raw loader fills: never inherit another one
    os.environ.update(settings.dbt_env())
    os.environ.setdefault(PLANNED_EVENTS_ENV, "true")
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _newest_dbt_source_mtime(project_dir: Path) -> float:
    """Latest modification time of the files a dbt parse reads."""
    newest = (project_dir / "dbt_project.yml").stat().st_mtime
    for folder in ("models", "seeds", "macros"):
        for path in (project_dir / folder).rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    return newest


def ensure_manifest() -> None:
    """Parse the dbt project if its manifest is missing or older than the project's files.

    Never done at import; a stale manifest would give Dagster an outdated asset graph.
    """
    from kam_assets.dbt_project import dbt_project

    manifest = dbt_project.manifest_path
    if not manifest.exists():
        print(f"dbt manifest missing; parsing the dbt project into {manifest}")
    elif manifest.stat().st_mtime < _newest_dbt_source_mtime(Path(dbt_project.project_dir)):
        print(f"dbt project changed since {manifest} was written; parsing it again")
    else:
        return
    dbt_project.preparer.prepare(dbt_project)
