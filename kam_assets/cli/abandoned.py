"""Runs left STARTED by a `kam run` process that died are marked FAILED by the next one."""

from __future__ import annotations

import os
import socket

PID_TAG = "kam/pid"
HOST_TAG = "kam/host"


def process_tags() -> dict[str, str]:
    """The tags that let a later `kam run` tell whether this process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def fail_abandoned_runs(instance, job_name: str) -> list[str]:
    """Mark FAILED the runs of ``job_name`` left STARTED by a `kam run` process that died
    (killed, machine restarted): same host, its pid no longer alive. Returns their ids.

    An in-process run has no run monitor: without this, a killed run stays "started" in
    the Dagster UI forever. A pid reused by another process keeps the run as it is.
    """
    import dagster as dg

    host = socket.gethostname()
    found = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=job_name,
            statuses=[
                dg.DagsterRunStatus.NOT_STARTED,  # created, its process died before starting
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ],
        )
    )
    for run in runs:
        pid = run.tags.get(PID_TAG, "")
        if run.tags.get(HOST_TAG) != host or not pid.isdigit() or _process_alive(int(pid)):
            continue
        instance.report_run_failed(
            run,
            f"the kam process (pid {pid} on {host}) ended without finishing this run "
            "(killed or crashed); marked failed by the next kam run",
        )
        found.append(run.run_id)
    return found
