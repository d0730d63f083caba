"""Resources of the code location, resolved from the environment in this one place.

``KamResource`` reads :class:`pipelines.settings.Settings` (every ``KAM_*`` variable) when a
step runs, not at import; any field set explicitly overrides the environment.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from kam_assets.dbt_project import dbt_project
from pipelines.settings import Settings


class KamResource(dg.ConfigurableResource):
    """Where the sources, the work DB and the warehouse are (defaults: KAM_* environment)."""

    erp_url: str | None = None
    crm_url: str | None = None
    data_dir: str | None = None
    warehouse: str | None = None
    chunk_rows: int | None = None

    def settings(self) -> Settings:
        settings = Settings.from_env()
        overrides: dict = {}
        if self.data_dir:
            overrides["data_dir"] = Path(self.data_dir).expanduser().resolve()
            if not self.warehouse and settings.warehouse == str(
                settings.data_dir / "warehouse" / "kam.duckdb"
            ):
                overrides["warehouse"] = str(overrides["data_dir"] / "warehouse" / "kam.duckdb")
        for name in ("erp_url", "crm_url", "warehouse", "chunk_rows"):
            value = getattr(self, name)
            if value not in (None, ""):
                overrides[name] = value
        return dataclasses.replace(settings, **overrides) if overrides else settings


def dbt_executable() -> str:
    """The dbt of this Python environment, even when its bin folder is not on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    if beside.exists():
        return str(beside)
    return shutil.which("dbt") or "dbt"


def build_resources() -> dict[str, object]:
    return {
        "kam": KamResource(),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    }
