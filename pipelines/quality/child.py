"""Running a stage's checks in a child process, so their memory is returned when it ends.

The daily job runs in one long-lived kam process (Dagster's in-process executor). What the
checks grow there (Great Expectations' modules, pandas / Arrow frames, DuckDB's buffers)
mostly stays in that process after they end: the raw checks' share sat beside dbt's build
for its whole length, and the mart checks (which read every mart, e.g. the 13.8M rows of
client_status_history at 20,000 clients x 3 years) made the kam process the run's largest
(docs/benchmarks.md "Current figures"). In a child, it is all given back when the child
exits, and the kam process stays at its own size.

The checks go to the child by name: it takes them from the stage's declared list
(:func:`declared_checks`: ``raw_checks()`` or ``MART_CHECKS``), the run-time context and
the results come back pickled through files. A check that is not declared there (a test's
own check) cannot be named to a child: :func:`can_run_in_child` says so and the caller runs
the checks in its own process, as before. A child that fails (killed, out of memory, an
import error) fails every check it was given: never a pass.

Framework-free (no Dagster import): ``python -m pipelines.quality.child <request> <result>``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.process_guard import own_peak_rss_mb
from pipelines.quality.checks import CheckContext, CheckOutcome, FrameCheck, check_name

RAW_STAGE = "raw"
MART_STAGE = "marts"
#: characters of the child's stderr kept in a failure's message
STDERR_TAIL = 2000


def declared_checks(stage: str) -> dict[str, FrameCheck]:
    """The checks a child can run for ``stage``, by display name."""
    if stage == RAW_STAGE:
        from pipelines.quality.raw_checks import raw_checks

        checks = raw_checks()
    elif stage == MART_STAGE:
        from pipelines.quality.mart_checks import MART_CHECKS

        checks = MART_CHECKS
    else:
        raise ValueError(f"no declared checks for stage {stage!r}")
    return {check_name(c): c for c in checks}


def can_run_in_child(stage: str, checks: Iterable[FrameCheck]) -> bool:
    """Whether every check is the stage's declared check of the same name, so the child
    builds the very same check (same relation, columns, query and expectations)."""
    try:
        declared = declared_checks(stage)
    except ValueError:
        return False
    for check in checks:
        same = declared.get(check_name(check))
        if same is None or not _same_check(same, check):
            return False
    return True


def _same_check(a: FrameCheck, b: FrameCheck) -> bool:
    """Equal declarations: the fields, and the same code behind the callables (raw checks
    are built anew on each call, so their closures are new objects of the same code)."""
    plain = ("asset", "name", "description", "relation", "columns", "id_columns")
    if any(getattr(a, f) != getattr(b, f) for f in plain):
        return False
    for f in ("expectations", "query", "derive"):
        fa, fb = getattr(a, f), getattr(b, f)
        if (fa is None) != (fb is None):
            return False
        if fa is not None and getattr(fa, "__code__", fa) is not getattr(fb, "__code__", fb):
            return False
    return True


@dataclass
class ChildResult:
    """What the child returns: one outcome per check (in the order given), the
    fingerprint of the asked relations (None: not asked or failed, see
    ``fingerprint_error``), and the child's figures."""

    outcomes: list[tuple[FrameCheck, CheckOutcome]]
    fingerprint: dict[str, dict[str, Any]] | None = None
    fingerprint_error: str | None = None
    seconds: float = 0.0
    max_rss_mb: float = 0.0  # the child's own peak (without /proc: an upper bound)
    stderr: str = ""


def run_checks_in_child(
    work_db: Path | str,
    stage: str,
    checks: Sequence[FrameCheck],
    ctx: CheckContext,
    fingerprint_relations: Iterable[str] | None = None,
) -> ChildResult:
    """Run ``checks`` (declared checks of ``stage``, see :func:`can_run_in_child`) in a
    fresh Python process; with ``fingerprint_relations``, the child first takes their
    fingerprint (what the checks see, before they run)."""
    checks = list(checks)
    request = {
        "work_db": str(work_db),
        "stage": stage,
        "names": [check_name(c) for c in checks],
        "ctx": ctx,
        "fingerprint": sorted(set(fingerprint_relations)) if fingerprint_relations else None,
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kam_check_child_") as tmp:
        request_path, result_path = Path(tmp, "request.pickle"), Path(tmp, "result.pickle")
        request_path.write_bytes(pickle.dumps(request))
        with open(Path(tmp, "stderr.log"), "w+b") as err:
            # the child is in kam's process group: the guard ends it if kam dies
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipelines.quality.child", request_path, result_path],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        code = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        if code != 0 or not result_path.exists():
            why = f"the check process exited {code}: {stderr[-STDERR_TAIL:].strip()}"
            failed = [(c, CheckOutcome(False, 0, name=check_name(c), error=why)) for c in checks]
            return ChildResult(failed, None, why, seconds, usage.ru_maxrss / 1024, stderr)
        result = pickle.loads(result_path.read_bytes())
    outcomes = list(zip(checks, result["outcomes"], strict=True))
    peak = result.get("max_rss_mb") or usage.ru_maxrss / 1024  # ru_maxrss: kam's peak too
    return ChildResult(
        outcomes, result["fingerprint"], result["fingerprint_error"], seconds, peak, stderr
    )


def _child(request_path: str, result_path: str) -> int:
    """The child: fingerprint (if asked), then the checks; the result written last."""
    from pipelines.quality.fingerprint import fingerprint_db
    from pipelines.quality.runner import run_checks

    request = pickle.loads(Path(request_path).read_bytes())
    declared = declared_checks(request["stage"])
    checks = [declared[name] for name in request["names"]]
    fingerprint, fingerprint_error = None, None
    if request["fingerprint"]:
        try:
            fingerprint = fingerprint_db(request["work_db"], request["fingerprint"])
        except Exception as exc:  # the caller publishes only after running the checks again
            fingerprint_error = f"{type(exc).__name__}: {exc}"
    outcomes = [o for _c, o in run_checks(request["work_db"], checks, request["ctx"])]
    result = {
        "outcomes": outcomes,
        "fingerprint": fingerprint,
        "fingerprint_error": fingerprint_error,
        "max_rss_mb": own_peak_rss_mb(),
    }
    tmp = Path(result_path).with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(result))
    os.replace(tmp, result_path)  # a child killed mid-write leaves no result
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:3]))
