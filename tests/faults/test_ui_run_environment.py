"""Weak point: source passwords were in /proc/<pid>/environ of every child process of a run
(dbt, Dagster's log watchers), which need none of them. `kam run` and `kam backfill` hold
them out of their environment (test_older_as_of.py); this is the other way a run starts:
launched in the Dagster UI of `kam dev`, queued, and started by the daemon in a run worker
that the code server spawns.

Real `kam dev` on a small generated demo (SQLite sources): a run of the partition D is
launched through the UI's GraphQL API; while it runs, every process under `kam dev` is
read (parent, command line, environment). The run must succeed, and no process descending
from its run worker (the pid Dagster records for the run) may have KAM_ERP_URL,
KAM_CRM_URL or KAM_WAREHOUSE, nor any of their values, in its environment.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest
from faults_support import KAM, REPO, kam_env
from ui_server import free_port, graphql, start_kam_dev, stop_group, wait_until_serving

from pipelines.process_guard import (
    descendants,
    process_cmdline,
    process_environ,
    process_table,
)

AS_OF = "2026-09-30"
HELD = ("KAM_ERP_URL", "KAM_CRM_URL", "KAM_WAREHOUSE")
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.generator import generate_demo

    out = tmp_path_factory.mktemp("ui_env_demo")
    generate_demo(out, clients=60, years=2, seed=13, end_date=date.fromisoformat(AS_OF))
    return out


def test_children_of_a_run_launched_in_the_ui_get_no_source_or_warehouse_url(
    demo: Path, fault_dbt_target: Path, tmp_path: Path
) -> None:
    import dagster as dg

    home = tmp_path / "dagster_home"
    env = kam_env(
        data_dir=tmp_path / "data",
        warehouse=tmp_path / "warehouse" / "kam.duckdb",
        erp_url=f"sqlite:///{demo / 'erp.sqlite'}",
        crm_url=f"sqlite:///{demo / 'crm.sqlite'}",
        dagster_home=home,
        dbt_target=fault_dbt_target,
    )
    values = [env[name].encode() for name in HELD]
    port = free_port()
    log = tmp_path / "dev.log"
    server = start_kam_dev(KAM, env, port, log, cwd=REPO)
    # pid -> (parent pid, command line, held names it had, held values it had)
    seen: dict[int, tuple[int, str, list[str], int]] = {}
    try:
        wait_until_serving(server, port, log, timeout_s=300)
        params = {
            "selector": {
                "repositoryLocationName": "kam",
                "repositoryName": "__repository__",
                "jobName": "kam_daily",
            },
            "runConfigData": "{}",
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": AS_OF}]},
        }
        launched = graphql(port, LAUNCH, {"params": params})
        result = launched.get("data", {}).get("launchRun") or {}
        assert result.get("__typename") == "LaunchRunSuccess", launched
        run_id = result["run"]["runId"]

        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 1200
            while True:
                table = process_table() or {}
                for pid in descendants(server.pid, table):
                    if pid in seen or pid not in table:
                        continue
                    environ = process_environ(pid)
                    names = sorted(
                        n for n in HELD if any(e.startswith(n.encode() + b"=") for e in environ)
                    )
                    leaked = sum(1 for v in values if any(v in e for e in environ))
                    seen[pid] = (table[pid].ppid, process_cmdline(pid), names, leaked)
                run = instance.get_run_by_id(run_id)
                if run is not None and run.is_finished:
                    break
                assert time.monotonic() < deadline, "the run did not finish in 1200 s"
                time.sleep(0.05)
            status = run.status
            workers = [
                event.dagster_event.engine_event_data.metadata["pid"].value  # the run worker
                for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
                if event.message.startswith("Started process for run")
            ]
            failures = [
                event.message
                for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            ]
    finally:
        stop_group(server, timeout_s=60)
    assert status == dg.DagsterRunStatus.SUCCESS, (status, failures, log.read_text()[-3000:])
    assert len(workers) == 1, workers
    worker = int(workers[0])
    assert worker in seen, f"run worker {worker} not seen under kam dev: {sorted(seen)}"

    def descends_from_worker(pid: int) -> bool:
        while pid in seen:
            pid = seen[pid][0]
            if pid == worker:
                return True
        return False

    children = {pid: seen[pid] for pid in seen if descends_from_worker(pid)}
    assert any("dbt" in line for _, line, _, _ in children.values()), children
    leaking = {
        pid: (line[:100], names, leaked)
        for pid, (_, line, names, leaked) in children.items()
        if names or leaked
    }
    assert not leaking, "\n".join(f"{pid}: {what}" for pid, what in leaking.items())
