"""Running a stage's checks in a child process when the work DB is large, so their memory
is returned when they end; in the kam process when it is small, where a child costs more time
than it saves memory.

The daily job runs in one long-lived kam process (Dagster's in-process executor). What the
checks grow there (Great Expectations' modules, pandas / Arrow frames, DuckDB's buffers)
mostly stays in that process after they end: the raw checks' share sat beside dbt's build
for its whole length, and the mart checks (which read every mart, e.g. the 13.8M rows of
client_status_history at 20,000 clients x 3 years) made the kam process the run's largest
(docs/benchmarks.md, section 1 "Daily run vs floor"). In a child, it is all given back when
the child exits, and the kam process stays at its own size.

But each child imports Great Expectations again (~4.6 s wall at load 2) and opens the work
DB again: at 600 clients the two children cost ~+12 s of a ~54 s run, for memory that does
not matter there (a ~1 GB process tree). So :func:`run_stage_checks` runs the checks in a
child only from a work DB of :data:`CHILD_FROM_WORK_DB_MB` on, and in this process below it
(see the constant for the measured sizes).

The checks go to the child by name: it takes them from the stage's declared list
(:func:`declared_checks`: ``raw_checks()`` or ``MART_CHECKS``), the run-time context and
the results come back pickled through files. A check that is not declared there (a test's
own check) cannot be named to a child: :func:`can_run_in_child` says so and the caller runs
the checks in its own process. A child that fails (killed, out of memory, an import error)
fails every check it was given: never a pass.

Framework-free (no Dagster import): ``python -m pipelines.quality.child <request> <result>``,
started through :mod:`pipelines.child_process`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.child_process import run_in_child, serve
from pipelines.quality.checks import CheckContext, CheckOutcome, FrameCheck, check_name

RAW_STAGE = "raw"
MART_STAGE = "marts"
#: A stage's checks run in a child process from a work DB of this size on (MB, the file and
#: its WAL when the checks start), in the kam process below it. Measured (2026-12-07): the
#: 600-client demo's work DB has 11 MB at the raw checks and 73-80 MB at the mart checks;
#: there the two children cost ~10 s a run (raw + mart checks 18-24 s in children, 9-12 s in
#: process, load ~6) and the process tree stays near 1.1-1.2 GB either way. At 20,000
#: clients it has 182 MB at the first run's raw checks and 2,093 MB at its mart checks: there
#: the children keep the kam process ~120 MB lower beside dbt (a tree of 1.8-1.9 GB, the
#: bound 2 GB).
CHILD_FROM_WORK_DB_MB = 128


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
    """What the checks returned: one outcome per check (in the order given), the
    fingerprint of the asked relations (None: not asked or failed, see
    ``fingerprint_error``), where they ran and the figures of that run."""

    outcomes: list[tuple[FrameCheck, CheckOutcome]]
    fingerprint: dict[str, dict[str, Any]] | None = None
    fingerprint_error: str | None = None
    seconds: float = 0.0
    max_rss_mb: float = 0.0  # the child's own peak (without /proc: an upper bound); 0 here
    stderr: str = ""
    in_child: bool = True
    why: str = ""  # why in a child or in this process (work DB size, undeclared checks)


def work_db_mb(work_db: Path | str) -> float:
    """Size of the work DB on disk, MB: the file and its write-ahead log (0 if absent)."""
    paths = (Path(work_db), Path(f"{work_db}.wal"))
    return sum(p.stat().st_size for p in paths if p.is_file()) / 2**20


def run_stage_checks(
    work_db: Path | str,
    stage: str,
    checks: Sequence[FrameCheck],
    ctx: CheckContext,
    fingerprint_relations: Iterable[str] | None = None,
    child_from_mb: float = CHILD_FROM_WORK_DB_MB,
) -> ChildResult:
    """Run a stage's ``checks`` (and take the fingerprint of ``fingerprint_relations``
    first): in a child process when the work DB has ``child_from_mb`` MB or more and every
    check can be named to a child (:func:`can_run_in_child`), else in this process."""
    checks = list(checks)
    size = work_db_mb(work_db)
    if size < child_from_mb:
        why = f"work DB {size:,.0f} MB, under {child_from_mb:,.0f} MB"
    elif not can_run_in_child(stage, checks):
        why = f"work DB {size:,.0f} MB, but checks not declared for the {stage} stage"
    else:
        child = run_checks_in_child(work_db, stage, checks, ctx, fingerprint_relations)
        child.why = f"work DB {size:,.0f} MB, from {child_from_mb:,.0f} MB on"
        return child
    result = _run_here(work_db, checks, ctx, fingerprint_relations)
    result.why = why
    return result


def _run_here(
    work_db: Path | str,
    checks: list[FrameCheck],
    ctx: CheckContext,
    fingerprint_relations: Iterable[str] | None,
) -> ChildResult:
    from pipelines.quality.runner import run_checks

    started = time.perf_counter()
    fingerprint, fingerprint_error = _fingerprint(work_db, fingerprint_relations)
    outcomes = run_checks(work_db, checks, ctx)
    seconds = time.perf_counter() - started
    return ChildResult(outcomes, fingerprint, fingerprint_error, seconds, in_child=False)


def _fingerprint(
    work_db: Path | str, relations: Iterable[str] | None
) -> tuple[dict[str, dict[str, Any]] | None, str | None]:
    """The relations' fingerprint, or why it could not be taken (None, None: not asked)."""
    if not relations:
        return None, None
    from pipelines.quality.fingerprint import fingerprint_db

    try:
        return fingerprint_db(work_db, sorted(set(relations))), None
    except Exception as exc:  # the caller publishes only after running the checks again
        return None, f"{type(exc).__name__}: {exc}"


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
    run = run_in_child("pipelines.quality.child", request)
    if not run.ok:
        why = f"the check process {run.failure()}"
        failed = [(c, CheckOutcome(False, 0, name=check_name(c), error=why)) for c in checks]
        return ChildResult(failed, None, why, run.seconds, run.max_rss_mb, run.output)
    result = run.result
    return ChildResult(
        list(zip(checks, result["outcomes"], strict=True)),
        result["fingerprint"],
        result["fingerprint_error"],
        run.seconds,
        run.max_rss_mb,
        run.output,
    )


def _child(request: dict[str, Any]) -> dict[str, Any]:
    """The child: fingerprint (if asked), then the checks."""
    from pipelines.quality.runner import run_checks

    declared = declared_checks(request["stage"])
    checks = [declared[name] for name in request["names"]]
    fingerprint, fingerprint_error = _fingerprint(request["work_db"], request["fingerprint"])
    outcomes = [o for _c, o in run_checks(request["work_db"], checks, request["ctx"])]
    return {
        "outcomes": outcomes,
        "fingerprint": fingerprint,
        "fingerprint_error": fingerprint_error,
    }


if __name__ == "__main__":
    sys.exit(serve(_child))
