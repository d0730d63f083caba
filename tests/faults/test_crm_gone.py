"""Weak point: unsetting KAM_CRM_URL on a data dir that had a CRM wiped every CRM raw row
silently (not counted as deletes): decision_maker_left NULL for all, kam_actions 26 -> 11.

Now `kam check` refuses (exit 2) naming KAM_CRM_URL and KAM_CRM_REMOVED, the extraction
refuses and leaves the raw layer as it was; with the CRM removed on purpose its rows are
removed and kept in audit.deleted_rows, counted like deletes.
"""

from __future__ import annotations

import os
import subprocess
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from faults_support import KAM

from pipelines.contract import tables_of
from pipelines.extract.raw_loader import SourceRemovedError, extract_all
from pipelines.gate.quarantine import apply_quarantine

AS_OF = date(2026, 9, 30)


def _crm_rows(work: Path) -> int:
    con = duckdb.connect(str(work), read_only=True)
    try:
        return sum(
            con.execute(f"select count(*) from raw_crm.{t.name}").fetchall()[0][0]
            for t in tables_of("crm")
        )
    finally:
        con.close()


def test_crm_unset_is_refused_unless_removed_on_purpose(tmp_path: Path) -> None:
    from pipelines.generator import generate_demo

    generate_demo(tmp_path / "src", clients=60, years=2, seed=21, end_date=AS_OF)
    erp = f"sqlite:///{tmp_path / 'src' / 'erp.sqlite'}"
    crm = f"sqlite:///{tmp_path / 'src' / 'crm.sqlite'}"
    work = tmp_path / "data" / "work" / "kam_work.duckdb"
    extract_all(work, erp, crm, "run-1", chunk_rows=1000)
    stored = _crm_rows(work)
    assert stored > 0

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DAGSTER_", "DBT_"))}
    env.update(KAM_DATA_DIR=str(tmp_path / "data"), KAM_ERP_URL=erp)
    check = subprocess.run(
        [str(KAM), "check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 2, check.stdout + check.stderr
    assert "KAM_CRM_URL is not set" in check.stdout and "KAM_CRM_REMOVED=true" in check.stdout
    assert f"{stored:,} of its rows" in check.stdout

    with pytest.raises(SourceRemovedError, match="KAM_CRM_REMOVED"):
        extract_all(work, erp, None, "run-2", chunk_rows=1000)
    assert _crm_rows(work) == stored

    env["KAM_CRM_REMOVED"] = "true"
    check = subprocess.run(
        [str(KAM), "check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    extract_all(work, erp, None, "run-3", chunk_rows=1000, crm_removed=True)
    assert _crm_rows(work) == 0
    con = duckdb.connect(str(work))
    try:
        apply_quarantine(con, "run-3", AS_OF, today=datetime.now().date())
        deleted = con.execute(
            "select count(*) from audit.deleted_rows where system = 'crm' and run_id = 'run-3'"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert deleted == stored
