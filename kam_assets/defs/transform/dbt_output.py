"""dbt's console output, condensed: every line to a log file, progress and problems to the
step log.

dagster-dbt echoes every dbt log line to stdout (300+ lines for the demo). The run's
console gets instead one progress line per tenth of the nodes, counting models (with
seeds and snapshots) and tests apart (``dbt: 12/38 models, 40/125 tests``), every warning
or error with its message, whether dbt had to re-parse the project, and dbt's closing
summary. The whole output stays in ``dbt_output.log`` beside dbt's own debug log
(``dbt.log``, JSON with timestamps) in dbt's target folder under KAM_DATA_DIR.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import TextIO

#: "12 of 154 START sql table model marts.dim_clients ..." and every result line after it
_INDEXED = re.compile(r"^\s*(\d+) of (\d+) (START|OK|PASS|WARN|ERROR|FAIL|SKIP|NO-OP)\b(.*)$")
_PROBLEM = re.compile(r"\b(WARN|ERROR|FAIL|Error|Failure|Warning)\b")
_SUMMARY = re.compile(r"^\s*(Done\.|Finished running|Completed with|Found \d+ models)")
_REPARSE = re.compile(r"Unable to do partial parsing|partial parse save file not found", re.I)
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

MODEL, TEST, OTHER = "model", "test", "other"


def node_kind(description: str) -> str:
    """What a START line (or a result line without one) names: a model, seed or snapshot
    (``sql table model s.x``, ``seed file s.x``, ``snapshot s.x``, ``SKIP relation s.x``),
    a test (``test name``, ``unit_test m::name``) or something else (an exposure, a hook)."""
    words = description.split()
    if not words:
        return OTHER
    head = words[0]
    if head in ("test", "unit_test"):
        return TEST
    if head in ("seed", "snapshot", "relation") or "model" in words[:4]:
        return MODEL
    return OTHER


class DbtOutput(io.TextIOBase):
    """A text stream for dbt's lines: ``say`` gets what an operator needs to see.

    ``models`` / ``tests``: how many models (with seeds, snapshots) and tests the command
    runs, when known beforehand (:func:`kam_assets.defs.transform.assets.expected_counts`);
    without them the progress line gives the overall count only.
    """

    def __init__(
        self,
        log: TextIO,
        say: Callable[[str], None],
        models: int | None = None,
        tests: int | None = None,
    ) -> None:
        self._log = log
        self._say = say
        self._pending = ""
        self._next_tenth = 1
        self._in_problem_block = False
        self._expected = {MODEL: models, TEST: tests}
        self._kind: dict[int, str] = {}
        self._done = {MODEL: 0, TEST: 0, OTHER: 0}
        self.reparsed: str | None = None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._log.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(_COLOUR.sub("", line).rstrip())
        return len(text)

    def flush(self) -> None:
        self._log.flush()

    def progress(self, total: int) -> str:
        """``dbt: 12/38 models, 40/125 tests`` (totals as expected, or at least as done)."""
        done = sum(self._done.values())
        if self._expected[MODEL] is None or self._expected[TEST] is None:
            return f"dbt: {done}/{total} models and tests done"
        parts = []
        for kind, label in ((MODEL, "models"), (TEST, "tests")):
            expected = max(self._expected[kind] or 0, self._done[kind])
            parts.append(f"{self._done[kind]}/{expected} {label}")
        return "dbt: " + ", ".join(parts)

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        indexed = _INDEXED.match(line)
        if indexed:
            index, total, status = int(indexed[1]), int(indexed[2]), indexed[3]
            rest = indexed[4].strip()
            if status == "START":
                self._kind[index] = node_kind(rest)
                return
            kind = self._kind.get(index)
            if kind is None:  # no START line: a skipped node, an exposure
                kind = OTHER if status == "NO-OP" else node_kind(rest)
            self._done[kind] += 1
            if status in ("WARN", "ERROR", "FAIL"):
                self._say(f"dbt: {line.strip()}")
            reached = sum(self._done.values()) * 10 // total if total else 0
            if reached >= self._next_tenth:  # one line per tenth reached, never twice
                self._say(self.progress(total))
                self._next_tenth = reached + 1
            return
        if _REPARSE.search(line):
            self.reparsed = line.strip()
            self._say(f"dbt: {line.strip()} (full re-parse)")
            return
        if _SUMMARY.match(line):
            self._say(f"dbt: {line.strip()}")
            self._in_problem_block = line.lstrip().startswith("Completed with")
            return
        if self._in_problem_block or (_PROBLEM.search(line) and " START " not in line):
            self._say(f"dbt: {line.strip()}")
