"""Resources of the code location, resolved from the environment in this one place.

``KamResource`` reads :class:`pipelines.settings.Settings` (every ``KAM_*`` variable) when a
step runs, not at import; any field set explicitly overrides the environment.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

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


class KamDbtCliResource(DbtCliResource):
    """``DbtCliResource`` without the work it does in this process before each dbt command.

    dagster-dbt 0.29 runs ``dbt --version`` in a subprocess (to tell dbt Core from Fusion; it
    also asks PyPI for the latest version) and builds a dbt adapter in process (profile,
    project, base macros) before every ``cli()`` call: 3-4 s on an idle 2-core machine, up to
    9 s loaded. Neither has an option to turn it off, so this subclass overrides the two
    private members (tests/dagster/test_dbt_resource.py fails if dagster-dbt renames them):

    * the version is the installed dbt-core's when the executable is this environment's
      dbt (else dagster-dbt asks the executable, as before);
    * no in-process adapter: it serves only ``fetch_row_counts`` / ``fetch_column_metadata``
      and DuckDB's lock wait around them, which the dbt assets do not use.
    """

    @cached_property
    def _cli_version(self) -> Any:
        beside = Path(sys.executable).with_name("dbt")
        used = shutil.which(self.dbt_executable)
        if beside.exists() and used and Path(used).resolve() == beside.resolve():
            from packaging.version import Version

            return Version(installed_version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def build_resources() -> dict[str, object]:
    return {
        "kam": KamResource(),
        "dbt": KamDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    }
