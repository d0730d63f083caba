"""A real `kam dev` (the Dagster UI) for the tests that need one, and free ports."""

from __future__ import annotations

import json
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


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """One GraphQL request to the UI; its JSON answer."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


LOCATIONS = (
    "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus } } } }"
)


def wait_until_loaded(port: int, timeout_s: float, poll_s: float = 1) -> None:
    """Until every code location of the UI is loaded (its code server started). /server_info
    answers before that; a stop sent in between raced Dagster's code-server manager, which
    restarted the code server it saw exit (an orphan left running: CI, 2026-12-07)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = graphql(port, LOCATIONS)
        entries = (answer.get("data") or {}).get("workspaceOrError", {}).get("locationEntries")
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            return
        assert time.monotonic() < deadline, f"code locations not loaded in {timeout_s} s: {answer}"
        time.sleep(poll_s)
