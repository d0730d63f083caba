"""The dbt project, alone in its module.

Used by ``dagster-dbt project prepare-and-package --file kam_assets/dbt_project.py``
(which runs ``dbt parse`` to write the manifest) and by the dbt assets. Nothing is
parsed here: the manifest must exist before the definitions load. ``DBT_TARGET_PATH``
(the same variable dbt_project.yml reads) moves the manifest, e.g. for tests.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt"

dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    target_path=Path(os.environ.get("DBT_TARGET_PATH") or "target"),
)
