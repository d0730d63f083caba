"""pipelines.process_guard: a kill -9 of the guarded process ends its children (Linux)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.process_guard import end_group, group_members

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")

REPO = Path(__file__).resolve().parents[2]

# The guarded process: starts a long-running child inside the guard, prints the pids,
# then either waits to be killed or leaves the guard normally (argv[1] == "leave").
GUARDED = """
import subprocess, sys, time
from pipelines.process_guard import guarded_children
with guarded_children(grace=0.5) as watchdog:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(child.pid, watchdog, flush=True)
    if sys.argv[1] != "leave":
        time.sleep(60)
print("left", flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _start(mode: str, *, new_session: bool) -> tuple[subprocess.Popen, int, int]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-c", GUARDED, mode],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
    assert proc.stdout is not None
    child, watchdog = (int(x) for x in proc.stdout.readline().split())
    return proc, child, watchdog


@pytest.mark.parametrize("new_session", [True, False], ids=["group-leader", "makes-own-group"])
def test_kill_9_of_the_guarded_process_ends_its_child(new_session: bool) -> None:
    proc, child, watchdog = _start("stay", new_session=new_session)
    try:
        assert _alive(child) and _alive(watchdog)
        assert os.getpgid(proc.pid) == proc.pid  # a group of its own either way
        assert os.getpgid(watchdog) != proc.pid  # out of reach of a kill of that group
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _gone_within(child, 5), "the child outlived its killed parent"
        assert _gone_within(watchdog, 5), "the watchdog did not exit"
    finally:
        for pid in (child, proc.pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_leaving_the_guard_normally_ends_nothing() -> None:
    proc, child, watchdog = _start("leave", new_session=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "left"
        assert proc.wait(timeout=10) == 0
        assert _gone_within(watchdog, 5)
        time.sleep(0.3)
        assert _alive(child), "a release must not end the group"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_end_group_spares_the_processes_that_were_there_before() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    first = subprocess.Popen(sleeper, process_group=0)
    try:
        later = subprocess.Popen(sleeper, process_group=first.pid)
        assert group_members(first.pid) == {first.pid, later.pid}
        assert end_group(first.pid, spare={first.pid}, grace=1.0) == [later.pid]
        later.wait(timeout=5)
        assert _alive(first.pid)
    finally:
        first.kill()
        first.wait()
