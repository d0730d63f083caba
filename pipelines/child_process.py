"""Running a piece of work in a fresh Python process, so that its memory is returned when it ends.

The daily job runs in one long-lived kam process: what a step's queries or libraries grow
there (DuckDB's buffers, Great Expectations' modules, frames) mostly stays until the run
ends. Work run through :func:`run_in_child` grows a child instead, and the child gives it
all back when it exits.

The parent starts ``python -m <module> <request> <result>``; the module's ``__main__``
calls :func:`serve` with its handler. The request and the handler's result travel pickled
through files in a temporary folder (no size limit, any picklable value), and the result
file is written last (by rename): a child killed mid-way leaves none, so it never passes
for a success. The child is in the parent's process group: kam's guard ends it if kam dies.

Framework-free (no Dagster import).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.process_guard import own_peak_rss_mb

#: characters of the child's output kept in a failure's message
STDERR_TAIL = 2000


@dataclass
class ChildRun:
    """How the child ended: the handler's result (None if it failed, see :attr:`ok`), its
    exit code, wall seconds, its own peak RSS (MB; without ``/proc`` ``ru_maxrss``, an
    upper bound: a forked child carries its parent's peak over the exec) and its output."""

    result: Any
    exit_code: int
    seconds: float
    max_rss_mb: float
    output: str
    ok: bool

    def failure(self) -> str:
        """Why the child gave no result (its exit code and the tail of its output)."""
        return f"exited {self.exit_code}: {self.output[-STDERR_TAIL:].strip()}"


def run_in_child(module: str, request: Any) -> ChildRun:
    """Run ``python -m module`` (whose ``__main__`` calls :func:`serve`) on ``request``;
    wait for it and return what it ended with. Never raises for a failed child: the caller
    decides what a failure means (a check fails, a step raises)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kam_child_") as tmp:
        request_path, result_path = Path(tmp, "request.pickle"), Path(tmp, "result.pickle")
        request_path.write_bytes(pickle.dumps(request))
        with open(Path(tmp, "output.log"), "w+b") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, str(request_path), str(result_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            out.seek(0)
            output = out.read().decode(errors="replace")
        code = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        upper_bound = usage.ru_maxrss / 1024
        if code != 0 or not result_path.exists():
            return ChildRun(None, code, seconds, upper_bound, output, ok=False)
        envelope = pickle.loads(result_path.read_bytes())
    peak = envelope["max_rss_mb"] or upper_bound
    return ChildRun(envelope["result"], code, seconds, peak, output, ok=True)


def serve(handler: Callable[[Any], Any], argv: list[str] | None = None) -> int:
    """The child's side: read the request, call ``handler``, write its result last. An
    exception ends the child with exit code 1 and its traceback in the output."""
    request_path, result_path = (argv if argv is not None else sys.argv[1:])[:2]
    result = handler(pickle.loads(Path(request_path).read_bytes()))
    envelope = {"result": result, "max_rss_mb": own_peak_rss_mb()}
    tmp = Path(result_path).with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(envelope))
    os.replace(tmp, result_path)  # a child killed mid-write leaves no result
    return 0
