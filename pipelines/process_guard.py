"""Child processes end with the run: a watchdog that ends what a dead `kam run` left behind.

A ``kill -9`` of `kam run` (the OOM killer, an operator) cannot be caught, so kam cannot
stop its children itself: dbt (started by dagster-dbt with ``subprocess``) would keep
building, holding the work DB and the CPU, for seconds to minutes. :func:`guarded_children`
therefore starts a tiny watchdog process (this file run as a script, standard library
only, in a session of its own) that blocks on a pipe from kam:

* kam leaves the ``with`` block (success, failure or exception): it writes a release byte
  and closes the pipe, the watchdog exits and touches nothing;
* kam dies: the kernel closes the pipe without the byte; the watchdog sends SIGTERM to
  every process of kam's process group that was not already in it when the guard started,
  and SIGKILL to those still alive :data:`TERM_GRACE_SECONDS` later.

kam's children (and theirs) are in its process group unless they start their own session.
`kam run` makes itself a process-group leader when it is not one already, except in the
foreground of a terminal it does not lead (leaving that group would cut it off Ctrl-C) and
under pytest; processes already in the group at the start (``kam run | tee``'s ``tee``, a
parent that started kam without a group of its own) are spared. Members are read from
``/proc``; without it (not Linux) the whole group is signalled, only if kam leads it.

Framework-free: no Dagster import; the CLI wraps the run in :func:`guarded_children`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

#: written by kam before it closes the pipe: the run ended normally, nothing to end
RELEASE = b"r"
#: seconds between SIGTERM and SIGKILL of a leftover child
TERM_GRACE_SECONDS = 2.0
#: seconds the watchdog keeps sending SIGKILL to a group that does not empty
KILL_SECONDS = 5.0
#: the only variables the watchdog process inherits
_WATCHDOG_ENV = frozenset({"PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR"})
_WATCHDOG = os.path.abspath(__file__)


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` kam reads."""

    pid: int
    state: str  # R, S, Z (zombie), ...
    ppid: int
    pgrp: int
    session: int
    rss_pages: int


def process_table() -> dict[int, ProcStat] | None:
    """Every process of ``/proc`` (the one reader of it: the guard, the benchmark's memory
    sampler, the fault and UI tests; :func:`process_cmdline` and :func:`process_environ`
    for a process's command line and environment); None without ``/proc`` (not Linux). A
    process that ends while it is read is left out."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    table = {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # after "pid (comm) ": state, ppid, pgrp, session, ... (comm may hold spaces and
        # parentheses)
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry)
        table[pid] = ProcStat(
            pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[21])
        )
    return table


def process_cmdline(pid: int) -> str:
    """The command line of ``pid``, its arguments joined by spaces; "" when the process is
    gone, a zombie (nothing to read) or ``/proc`` is missing."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def process_environ(pid: int) -> list[bytes]:
    """The environment ``pid`` was started with, as its ``NAME=value`` entries (bytes, as
    the kernel keeps them); empty when the process is gone, not readable by this user (only
    root reads another user's) or ``/proc`` is missing."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [entry for entry in raw.split(b"\0") if entry]


def own_peak_rss_mb() -> float | None:
    """This process's peak resident memory, MB (``VmHWM``, reset at exec); None without
    ``/proc``. Not ``ru_maxrss``: a child forked from kam carries the kam image's peak over
    the exec (a checks child reported 759 MB for the ~580 MB it used)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def descendants(root: int, table: dict[int, ProcStat] | None = None) -> list[int]:
    """Pids of every descendant of ``root`` (children, theirs, ...), zombies included;
    empty without ``/proc``."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for proc in (table or {}).values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.append(child)
                todo.append(child)
    return out


def is_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def group_members(pgid: int) -> set[int] | None:
    """Pids of the live (not zombie) processes of process group ``pgid``; None without
    ``/proc``."""
    table = process_table()
    if table is None:
        return None
    return {p.pid for p in table.values() if p.state != "Z" and p.pgrp == pgid}


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def end_group(
    pgid: int, spare: set[int], grace: float = TERM_GRACE_SECONDS, announce=None
) -> list[int]:
    """SIGTERM every process of group ``pgid`` not in ``spare`` (nor this process), then
    SIGKILL those alive after ``grace`` seconds. The pids signalled, sorted. ``announce``
    is called first with the pids found (none: not called)."""
    me = os.getpid()

    def targets() -> set[int] | None:
        members = group_members(pgid)
        return None if members is None else members - spare - {me}

    left = targets()
    if left and announce is not None:
        announce(sorted(left))
    if left is None:  # no /proc: the whole group, and only a group of kam's own
        if not spare:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, sig)
                time.sleep(grace if sig == signal.SIGTERM else 0)
        return []
    signalled: set[int] = set()
    deadline = time.monotonic() + grace
    while left and time.monotonic() < deadline:
        for pid in left - signalled:  # also children started while we wait
            _signal(pid, signal.SIGTERM)
            signalled.add(pid)
        time.sleep(0.05)
        left = targets() or set()
    deadline = time.monotonic() + KILL_SECONDS
    while left and time.monotonic() < deadline:
        for pid in left:
            _signal(pid, signal.SIGKILL)
            signalled.add(pid)
        time.sleep(0.05)
        left = targets() or set()
    return sorted(signalled)


def _terminal_foreground(pgid: int) -> bool:
    """Whether ``pgid`` is the foreground group of a terminal on stdin/stdout/stderr."""
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd) and os.tcgetpgrp(fd) == pgid:
                return True
    return False


def own_process_group() -> int:
    """The process group the guard watches: this process's own, made so when it safely can
    (not in a terminal's foreground group it does not lead, not under pytest)."""
    pid, pgid = os.getpid(), os.getpgrp()
    if pgid == pid or _terminal_foreground(pgid) or "PYTEST_CURRENT_TEST" in os.environ:
        return pgid
    try:
        os.setpgid(0, 0)
    except OSError:
        return pgid
    return pid


@contextlib.contextmanager
def guarded_children(grace: float = TERM_GRACE_SECONDS) -> Iterator[int | None]:
    """Within the block, if this process dies, its children die too (see module notes).
    Yields the watchdog's pid, or None when no guard is possible (a shared process group
    and no ``/proc`` to tell its members apart)."""
    pgid = own_process_group()
    members = group_members(pgid)
    if members is None and pgid != os.getpid():
        yield None
        return
    spare = (members or set()) - {os.getpid()}
    read_end, write_end = os.pipe()
    try:
        watchdog = subprocess.Popen(
            [sys.executable, "-I", _WATCHDOG, str(pgid), str(read_end), str(grace)]
            + [str(p) for p in sorted(spare)],
            pass_fds=(read_end,),
            # the watchdog needs no setting: none of the source URLs (passwords) reach it
            env={k: v for k, v in os.environ.items() if k in _WATCHDOG_ENV},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # neither Ctrl-C nor a kill of kam's group reaches it
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    try:
        yield watchdog.pid
    finally:
        with contextlib.suppress(OSError):
            os.write(write_end, RELEASE)
        os.close(write_end)
        with contextlib.suppress(subprocess.TimeoutExpired):
            watchdog.wait(timeout=5)


def _watch(argv: list[str]) -> int:
    """The watchdog: ``<pgid> <fd> <grace> [spare pid ...]``."""
    pgid, fd, grace = int(argv[0]), int(argv[1]), float(argv[2])
    spare = {int(p) for p in argv[3:]}
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    received = b""
    while chunk := os.read(fd, 64):
        received += chunk
    if RELEASE in received:
        return 0

    def announce(pids: list[int]) -> None:
        print(
            f"kam: the kam process of group {pgid} died; ending its {len(pids)} leftover "
            f"process(es): {', '.join(map(str, pids))}",
            file=sys.stderr,
            flush=True,
        )

    end_group(pgid, spare, grace, announce)
    return 0


if __name__ == "__main__":
    sys.exit(_watch(sys.argv[1:]))
