"""pipelines.process_guard: a kill -9 of the guarded process ends its children (Linux)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.process_guard import (
    descendants,
    end_group,
    group_members,
    is_alive,
    process_cmdline,
    process_environ,
    process_table,
)

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


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.05)
    return not is_alive(pid)


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
        assert is_alive(child) and is_alive(watchdog)
        assert os.getpgid(proc.pid) == proc.pid  # a group of its own either way
        assert os.getpgid(watchdog) != proc.pid  # out of reach of a kill of that group
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _gone_within(child, 5), "the child outlived its killed parent"
        assert _gone_within(watchdog, 5), "the watchdog did not exit"
    finally:
        for pid in (child, proc.pid):
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_leaving_the_guard_normally_ends_nothing() -> None:
    proc, child, watchdog = _start("leave", new_session=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "left"
        assert proc.wait(timeout=10) == 0
        assert _gone_within(watchdog, 5)
        time.sleep(0.3)
        assert is_alive(child), "a release must not end the group"
    finally:
        if is_alive(child):
            os.kill(child, signal.SIGKILL)


def test_end_group_spares_the_processes_that_were_there_before() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    first = subprocess.Popen(sleeper, process_group=0)
    try:
        later = subprocess.Popen(sleeper, process_group=first.pid)
        assert group_members(first.pid) == {first.pid, later.pid}
        assert end_group(first.pid, spare={first.pid}, grace=1.0) == [later.pid]
        later.wait(timeout=5)
        assert is_alive(first.pid)
    finally:
        first.kill()
        first.wait()


# A child that starts a grandchild and prints its pid.
PARENT = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(grandchild.pid, flush=True)
time.sleep(60)
"""


def test_process_table_walks_children_of_children_and_tells_zombies() -> None:
    child = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(child.stdout.readline())
        # the grandchild may still be inside exec (state R, no pages mapped yet: seen once in
        # CI as rss_pages=0), so read the table again until its memory shows, for 10 s at most
        deadline = time.monotonic() + 10
        table = process_table()
        while (
            table is not None
            and grandchild in table
            and table[grandchild].rss_pages == 0
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
            table = process_table()
        assert table is not None
        assert table[child.pid].ppid == os.getpid()
        assert table[grandchild].ppid == child.pid
        assert table[child.pid].pgrp == os.getpgrp()
        assert table[grandchild].rss_pages > 0
        family = descendants(os.getpid(), table)
        assert child.pid in family and grandchild in family
        assert descendants(child.pid) == [grandchild]
        os.kill(grandchild, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_table()[grandchild].state != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        # killed, not yet reaped by its parent: listed, but not alive
        assert process_table()[grandchild].state == "Z"
        assert not is_alive(grandchild) and is_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not is_alive(child.pid)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_own_peak_rss_is_this_process_peak_not_a_forked_parents() -> None:
    # a child that allocates ~200 MB reports at least that; a fresh interpreter started by
    # it afterwards (exec resets VmHWM) reports far less, although its parent's peak was high
    program = (
        "import subprocess, sys\n"
        "from pipelines.process_guard import own_peak_rss_mb\n"
        "block = bytearray(200 * 1024 * 1024)\n"
        "fresh = subprocess.run([sys.executable, '-c', 'from pipelines.process_guard import "
        "own_peak_rss_mb; print(own_peak_rss_mb())'], capture_output=True, text=True, check=True)\n"
        "print(own_peak_rss_mb(), fresh.stdout.strip())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout.split()
    parent_peak, fresh_peak = float(out[0]), float(out[1])
    assert parent_peak >= 200
    assert fresh_peak < 150


def test_the_process_table_reads_each_process_s_parent_group_and_session() -> None:
    me = process_table()[os.getpid()]
    assert (me.ppid, me.pgrp, me.session) == (os.getppid(), os.getpgrp(), os.getsid(0))
    assert me.state in {"R", "S"} and me.rss_pages > 0


def test_a_process_s_command_line_and_environment() -> None:
    marker = "kam-process-guard-test"
    script = "import time; print('up', flush=True); time.sleep(30)"
    child = subprocess.Popen(
        [sys.executable, "-c", script, marker],
        env={"PATH": os.environ.get("PATH", ""), "KAM_GUARD_TEST": "x=1 y"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # its line: the exec is done (right after Popen /proc may show an empty cmdline)
        assert child.stdout.readline() == "up\n"
        assert marker in process_cmdline(child.pid).split()
        assert script in process_cmdline(child.pid)
        environ = process_environ(child.pid)
        assert b"KAM_GUARD_TEST=x=1 y" in environ
        assert b"" not in environ
        assert process_table()[child.pid].ppid == os.getpid()
        assert child.pid in descendants(os.getpid())
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    # gone: nothing to read, no error
    assert process_cmdline(child.pid) == ""
    assert process_environ(child.pid) == []
