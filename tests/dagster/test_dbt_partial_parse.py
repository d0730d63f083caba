"""dbt's partial parsing hits on the next day's run: the daily job's dbt step, run for two
as-of dates in one data dir, parses the project once (issue 12, "fast by default").

The first run re-parses (the manifest's partial parse was written with another work DB, so
the profile differs): that also shows the test sees dbt's "Unable to do partial parsing"
message when there is one. The second run, for the next date, must not re-parse, and its
marts must still be as of the new date (read from kam_run.run_parameters, not from a var).
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_support import step_failures

pytestmark = pytest.mark.slow

REPARSE = "Unable to do partial parsing"
PROGRESS = re.compile(
    r"dbt: (?P<models>\d+)/(?P<models_total>\d+) models, (?P<tests>\d+)/(?P<tests_total>\d+) tests"
)


def _run(defs, day: str):
    """The daily job's extraction, gates, raw checks and dbt step (every dbt model)."""
    from kam_assets.defs.transform.assets import kam_dbt_assets

    job = defs.resolve_job_def("kam_daily")
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(
        partition_key=day,
        instance=instance,
        raise_on_error=False,
        asset_selection=list(
            dg.AssetSelection.assets(*kam_dbt_assets.keys)
            .upstream()
            .required_multi_asset_neighbors()
            .resolve(defs.resolve_asset_graph())
        ),
    )
    assert result.success, step_failures(result)
    said = [r.user_message for r in instance.all_logs(result.run_id) if r.user_message]
    return result, said


def test_next_days_dbt_build_reuses_the_partial_parse(
    kam_defs, demo_sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("KAM_DATA_DIR", str(data))
    monkeypatch.setenv("KAM_WAREHOUSE", str(tmp_path / "warehouse" / "kam.duckdb"))
    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{demo_sources / 'erp.sqlite'}")
    monkeypatch.setenv("KAM_CRM_URL", f"sqlite:///{demo_sources / 'crm.sqlite'}")
    output = data / "dbt" / "target" / "dbt_output.log"

    _, said = _run(kam_defs, "2026-09-29")
    first = output.read_text()
    assert REPARSE in first, "the first run in a data dir parses the whole project"
    assert (data / "dbt" / "target" / "partial_parse.msgpack").is_file()

    _, said = _run(kam_defs, "2026-09-30")
    second = output.read_text()
    assert "Done. PASS=" in second, second[-2000:]
    reparse = [line for line in second.splitlines() if REPARSE in line]
    assert reparse == [], f"dbt re-parsed the project on the next day's run: {reparse}"
    assert not any(REPARSE in s for s in said)

    work_db = data / "work" / "kam_work.duckdb"
    with duckdb.connect(str(work_db), read_only=True) as con:
        marts = con.execute("select distinct as_of_date from marts.client_abc").fetchall()
        params = con.execute("select as_of_date from kam_run.run_parameters").fetchall()
    assert [str(d) for (d,) in marts] == ["2026-09-30"]
    assert [str(d) for (d,) in params] == ["2026-09-30"]

    # the console's progress: models (with seeds) and tests counted apart, all done
    progress = [m for m in map(PROGRESS.fullmatch, said) if m]
    assert progress, [s for s in said if s.startswith("dbt: ")]
    last = progress[-1]
    assert last["models"] == last["models_total"] and int(last["models_total"]) > 1, last[0]
    assert last["tests"] == last["tests_total"] and int(last["tests_total"]) > 1, last[0]
