"""Snapshot of the code location: every asset, check, job, schedule and resource.

A change to the graph (a model added, a check dropped, a group renamed) shows up here as
a readable diff of ``snapshots/definitions.txt``. After an intended change, rewrite the
snapshot with ``KAM_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/dagster/test_defs_snapshot.py``
and review the diff in the commit.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"


def describe(defs: dg.Definitions) -> str:
    graph = defs.resolve_asset_graph()
    lines = ["# assets: key | group | kinds"]
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        kinds = ",".join(sorted(node.kinds)) or "-"
        lines.append(f"{key.to_user_string()} | {node.group_name} | {kinds}")
    lines.append("# asset checks: asset | check | blocking")
    checks = sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
    for check in checks:
        spec = graph.get_check_spec(check)
        lines.append(f"{check.asset_key.to_user_string()} | {check.name} | {spec.blocking}")
    lines.append("# jobs: name | executor | tags")
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        tags = ",".join(f"{k}={v}" for k, v in sorted(job.tags.items()))
        lines.append(f"{job.name} | {job.executor_def.name} | {tags}")
    lines.append("# schedules: name | job | cron | timezone")
    for name in sorted(s.name for s in defs.schedules or []):
        schedule = defs.resolve_schedule_def(name)
        lines.append(
            f"{schedule.name} | {schedule.job_name} | {schedule.cron_schedule} | "
            f"{schedule.execution_timezone}"
        )
    lines.append("# resources")
    lines.extend(sorted(defs.resources or {}))
    return "\n".join(lines) + "\n"


def test_definitions_match_the_snapshot(kam_defs, monkeypatch) -> None:
    current = describe(kam_defs)
    if os.environ.get("KAM_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), "no snapshot yet: run with KAM_UPDATE_SNAPSHOTS=1"
    assert current == SNAPSHOT.read_text()
