"""`kam dev` stops on SIGTERM when it was started without a terminal.

A shell that starts a command in the background without job control (a script's `&`,
also with setsid or nohup there) starts it with SIGINT ignored; `dagster dev` gives
SIGTERM the handling SIGINT has, so it then ignored SIGTERM as well and dagster dev,
webserver, daemon and code servers stayed alive until SIGKILL (2026-12-07: all 6 processes
alive 40 s after SIGTERM to the group). The test starts a real `kam dev` that way, in its
own session, and stops it as a service manager does: SIGTERM to the process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ui_server import free_port, start_kam_dev, wait_until_loaded, wait_until_serving

from pipelines.process_guard import process_table

BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc"),
]


def _session_pids(sid: int) -> set[int]:
    """The live (not zombie) processes whose session is ``sid``."""
    return {p.pid for p in (process_table() or {}).values() if p.state != "Z" and p.session == sid}


def _as_a_background_job() -> None:
    """What `cmd &` in a non-interactive shell does to the child: SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_kam_dev_started_without_a_terminal_stops_on_sigterm(
    demo_sources: Path, dbt_manifest: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DAGSTER_"))}
    env.update(
        KAM_DATA_DIR=str(tmp_path / "data"),
        KAM_ERP_URL=f"sqlite:///{demo_sources / 'erp.sqlite'}",
        KAM_CRM_URL=f"sqlite:///{demo_sources / 'crm.sqlite'}",
        DBT_TARGET_PATH=str(dbt_manifest.parent),
    )
    port = free_port()
    log = tmp_path / "dev.log"
    server = start_kam_dev(
        BIN / "kam", env, port, log, stdin=subprocess.DEVNULL, preexec_fn=_as_a_background_job
    )
    try:
        wait_until_serving(server, port, log, timeout_s=240, poll_s=1)
        # a service is stopped once it runs: with its code location loaded
        wait_until_loaded(port, timeout_s=240)
        started = _session_pids(server.pid)
        assert len(started) >= 3, started  # dagster dev, webserver, daemon (+ code servers)
        os.killpg(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while (left := _session_pids(server.pid)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"{len(left)} of {len(started)} processes alive 30 s after SIGTERM"
        assert server.wait(timeout=5) == 0, log.read_text()[-3000:]
    finally:
        if _session_pids(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
