"""dbt's partial parsing hits from the first run on: the daily job's dbt step, run for two
as-of dates in a new data dir, never parses the project (issue 12, "fast by default").

The first run starts from the packaged partial parse, seeded for this data dir's work DB
and vars (pipelines/dbt_partial_parse.py); what it leaves in manifest.json must be what a
full parse gives. The second run, for the next date, must not re-parse either, and its
marts must still be as of the new date (read from kam_run.run_parameters, not from a var).
A seed dbt does not accept must show: without the seed, dbt says "Unable to do partial
parsing" (the last test), the message these tests look for.
"""

from __future__ import annotations

import json
import os
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
    assert "Done. PASS=" in first, first[-2000:]
    reparse = [line for line in first.splitlines() if REPARSE in line]
    assert reparse == [], f"the first run in a new data dir re-parsed the project: {reparse}"
    assert (data / "dbt" / "target" / "partial_parse.msgpack").is_file()
    # the seeded parse is the full parse: same nodes, dependencies, configs, code
    assert _parsed(data / "dbt" / "target" / "manifest.json") == _parsed(
        Path(os.environ["DBT_TARGET_PATH"]) / "manifest.json"
    )

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
    # the models compiled their date literals from ONE lookup of the table per dbt
    # invocation (at most one per dbt thread), not one per as_of_date() call (51 before)
    lookups = _parameter_lookups(data / "dbt" / "target" / "dbt.log")
    assert 1 <= lookups <= int(os.environ.get("KAM_DBT_THREADS", "2")), lookups

    # the console's progress: models (with seeds) and tests counted apart, all done
    progress = [m for m in map(PROGRESS.fullmatch, said) if m]
    assert progress, [s for s in said if s.startswith("dbt: ")]
    last = progress[-1]
    assert last["models"] == last["models_total"] and int(last["models_total"]) > 1, last[0]
    assert last["tests"] == last["tests_total"] and int(last["tests_total"]) > 1, last[0]


def _parameter_lookups(dbt_log: Path) -> int:
    """Queries of kam_run.run_parameters in the last dbt invocation of ``dbt_log`` (dbt's
    JSON log: an invocation starts with its MainReportVersion event)."""
    # dbt rotates its log at 10 MB (dbt.log.1, .2, ...): read the rotated files, oldest first
    rotated = sorted(
        dbt_log.parent.glob(dbt_log.name + ".*"),
        key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0,
        reverse=True,
    )
    lines = [
        line
        for part in [*rotated, dbt_log]
        for line in part.read_text().splitlines()
        if line.strip()
    ]
    events = [json.loads(line) for line in lines]
    starts = [i for i, e in enumerate(events) if e["info"]["name"] == "MainReportVersion"]
    last = events[starts[-1] :] if starts else events
    return sum(
        1
        for e in last
        if e["info"]["name"] == "SQLQuery" and "kam_run.run_parameters" in e["data"].get("sql", "")
    )


#: what a node's parse decides (compiled code, timings and the macros a node's compilation
#: called come later, from the build)
PARSED_FIELDS = (
    "database",
    "schema",
    "alias",
    "resource_type",
    "fqn",
    "refs",
    "sources",
    "config",
    "checksum",
    "raw_code",
    "original_file_path",
    "tags",
    "columns",
)


def _parsed(manifest_path: Path) -> dict:
    manifest = json.loads(manifest_path.read_text())
    nodes = {
        key: {
            **{field: node.get(field) for field in PARSED_FIELDS},
            "depends_on_nodes": (node.get("depends_on") or {}).get("nodes"),
        }
        for section in ("nodes", "sources", "unit_tests", "exposures")
        for key, node in manifest.get(section, {}).items()
    }
    assert len(nodes) > 100
    return nodes


def test_without_the_seed_the_first_run_parses_and_says_so(
    kam_defs, demo_sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: a run whose seed is refused (no CRM: the package was
    parsed with one) re-parses, and dbt's message is in the output the tests read."""
    data = tmp_path / "data"
    monkeypatch.setenv("KAM_DATA_DIR", str(data))
    monkeypatch.setenv("KAM_WAREHOUSE", str(tmp_path / "warehouse" / "kam.duckdb"))
    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{demo_sources / 'erp.sqlite'}")
    monkeypatch.delenv("KAM_CRM_URL", raising=False)
    _, said = _run(kam_defs, "2026-09-29")
    assert REPARSE in (data / "dbt" / "target" / "dbt_output.log").read_text()
    assert any("not seeded: the package was parsed with has_crm true" in s for s in said), [
        s for s in said if "partial parse" in s
    ]
