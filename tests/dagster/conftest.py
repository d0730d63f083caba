"""Fixtures of the Dagster tests: a dbt manifest parsed into a temporary target folder.

The manifest is prepared once per session, as in production, by
``dagster-dbt project prepare-and-package`` (never at import). ``DBT_TARGET_PATH``
points both dbt and ``kam_assets.dbt_project`` at the temporary folder, so tests never
touch dbt/target. Import kam_assets only inside tests (after this fixture ran).

``online_retail_src`` / ``kam_on_online_retail``: the real UCI Online Retail export,
converted once per session, and `kam` set up on it as the README says (skip when absent,
failure under KAM_REQUIRE_ONLINE_RETAIL=1).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from online_retail_export import require_online_retail_csv

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def dbt_manifest(dbt_target: Path) -> Iterator[Path]:
    """The session's manifest (tests/conftest.py), with DBT_TARGET_PATH pointing at it for
    this process, so kam_assets.dbt_project and dbt read it (restored afterwards)."""
    base = dbt_target.parent
    saved = {k: os.environ.get(k) for k in ("DBT_TARGET_PATH", "KAM_WORK_DB", "PATH")}
    os.environ["DBT_TARGET_PATH"] = str(dbt_target)
    os.environ.setdefault("KAM_WORK_DB", str(base / "parse_only" / "kam_work.duckdb"))
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    if "kam_assets.dbt_project" in sys.modules:  # imported earlier with another target
        del sys.modules["kam_assets.dbt_project"]
    yield dbt_target / "manifest.json"
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def kam_defs(dbt_manifest: Path):
    from kam_assets.definitions import defs

    return defs()


def _break_orders(src: Path, dst: Path) -> None:
    """Copy an ERP sqlite file, rebuilding `orders` without its order_date column."""
    shutil.copyfile(src, dst)
    con = sqlite3.connect(dst)
    cols = [r[1] for r in con.execute("pragma table_info(orders)") if r[1] != "order_date"]
    con.executescript(
        f"""
        create table orders_rebuilt as select {", ".join(cols)} from orders;
        drop table orders;
        alter table orders_rebuilt rename to orders;
        """
    )
    con.commit()
    con.close()


@pytest.fixture
def break_orders():
    """Copy an ERP sqlite file, rebuilding `orders` without its order_date column."""
    return _break_orders


DEMO_END = "2026-09-30"


@pytest.fixture(scope="session")
def demo_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo (120 clients, 2 years, ending 2026-09-30), generated once per session.

    Tests must not modify it: copy a file before breaking it.
    """
    from datetime import date

    from pipelines.generator import generate_demo

    out = tmp_path_factory.mktemp("demo")
    generate_demo(out, clients=120, years=2, seed=11, end_date=date.fromisoformat(DEMO_END))
    return out


# --- the UCI Online Retail export (real data), converted once per session ---------------


@pytest.fixture(scope="session")
def online_retail_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Online Retail export converted by the adapter into a source folder (Parquet),
    once per session; skips, saying where it looked, when the export is absent (fails under
    KAM_REQUIRE_ONLINE_RETAIL=1: tests/online_retail_export.py).

    Tests must not modify it.
    """
    from pipelines.adapters.online_retail import convert_online_retail

    csv = require_online_retail_csv()
    src = tmp_path_factory.mktemp("online_retail") / "src"
    convert_online_retail(csv, src)
    return src


@dataclass(frozen=True)
class KamOnRetail:
    """One `kam` command's environment on the converted Online Retail folder."""

    env: dict[str, str]
    warehouse: Path
    data_dir: Path

    def kam(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "kam"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def kam_on_online_retail(
    online_retail_src: Path, dbt_manifest: Path, tmp_path: Path
) -> KamOnRetail:
    """`kam` as the README tells a user to run it on the converted Online Retail data (ERP
    only, partitions from 2010-12-01), with its own data folder and warehouse."""
    env = {
        **os.environ,
        "KAM_DATA_DIR": str(tmp_path / "data"),
        "KAM_ERP_URL": str(online_retail_src),
        "KAM_PARTITIONS_START": "2010-12-01",
        "KAM_WAREHOUSE": str(tmp_path / "wh" / "kam.duckdb"),
        "DBT_TARGET_PATH": str(dbt_manifest.parent),
    }
    env.pop("KAM_CRM_URL", None)
    env.pop("DAGSTER_HOME", None)
    return KamOnRetail(env, tmp_path / "wh" / "kam.duckdb", tmp_path / "data")
