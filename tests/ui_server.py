"""A real `kam dev` (the Dagster UI) for the tests that need one, and free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_kam_dev(kam: Path, env: dict, port: int, log: Path, **popen) -> subprocess.Popen:
    """`kam dev --port port` in its own session (so its whole group can be signalled),
    output to ``log``; ``popen``: more subprocess.Popen arguments (cwd, preexec_fn...)."""
    return subprocess.Popen(
        [str(kam), "dev", "--port", str(port)],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **popen,
    )


def wait_until_serving(
    server: subprocess.Popen, port: int, log: Path, timeout_s: float, poll_s: float = 2
) -> None:
    """Until the UI answers /server_info; fails with the log's tail if the server exits or
    does not answer within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5)
            return
        except OSError:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"the Dagster UI did not start in {timeout_s} s"
            time.sleep(poll_s)


def stop_group(server: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM to the server's process group, SIGKILL if it is still there after ``timeout_s``."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
