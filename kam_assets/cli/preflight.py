"""What `kam run` checks before any Dagster run is recorded: the settings, the as-of date
and that the warehouse and data folders can be written. Each problem names the setting."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipelines.run_params import RunParameters, as_of_problem
from pipelines.settings import Settings, SettingsError


def load_settings() -> tuple[Settings | None, list[str]]:
    """The settings, or the list of invalid ones (each naming its variable)."""
    try:
        return Settings.from_env(), []
    except SettingsError as exc:
        return None, list(exc.problems)


def _writable_folder_problem(folder: Path, what: str) -> str | None:
    """Whether ``folder`` exists or can be created and a file written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".kam-preflight-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"{what}: cannot write to the folder {folder} ({reason})"
    return None


def storage_problems(settings: Settings) -> list[str]:
    """The folders the run writes, checked by writing to them (root ignores modes)."""
    problems = []
    if not settings.warehouse_is_postgres:
        folder = Path(settings.warehouse).parent
        if problem := _writable_folder_problem(folder, f"KAM_WAREHOUSE={settings.warehouse}"):
            problems.append(problem)
    if problem := _writable_folder_problem(settings.data_dir, f"KAM_DATA_DIR={settings.data_dir}"):
        problems.append(problem)
    return problems


def run_problems(settings: Settings, params: RunParameters) -> list[str]:
    """Everything that would stop a run of ``params`` before its first step."""
    problems = []
    if not settings.erp_url:
        problems.append("KAM_ERP_URL is not set (the ERP source is required)")
    if problem := as_of_problem(params.as_of, settings, params.today):
        problems.append(problem)
    if not problems:  # only touch the disk for a run that could start
        problems.extend(storage_problems(settings))
    return problems
