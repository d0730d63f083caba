"""dbt's console output, condensed: every line to a log file, progress and problems to the
step log.

dagster-dbt echoes every dbt log line to stdout (300+ lines for the demo). The run's
console gets instead one progress line per tenth of the nodes, every warning or error
with its message, and dbt's closing summary; the whole output stays in ``dbt.log`` beside
dbt's target folder under KAM_DATA_DIR.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import TextIO

_RESULT = re.compile(r"^\s*(\d+) of (\d+) (OK|PASS|WARN|ERROR|FAIL|SKIP)\b")
_PROBLEM = re.compile(r"\b(WARN|ERROR|FAIL|Error|Failure|Warning)\b")
_SUMMARY = re.compile(r"^\s*(Done\.|Finished running|Completed with|Found \d+ models)")
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class DbtOutput(io.TextIOBase):
    """A text stream for dbt's lines: ``say`` gets what an operator needs to see."""

    def __init__(self, log: TextIO, say: Callable[[str], None]) -> None:
        self._log = log
        self._say = say
        self._pending = ""
        self._next_tenth = 1
        self._in_problem_block = False

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

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        result = _RESULT.match(line)
        if result:
            done, total, status = int(result[1]), int(result[2]), result[3]
            if status in ("WARN", "ERROR", "FAIL"):
                self._say(f"dbt: {line.strip()}")
            while total and done * 10 >= self._next_tenth * total and self._next_tenth <= 10:
                self._say(f"dbt: {done} of {total} models and tests done")
                self._next_tenth += 1
            return
        if _SUMMARY.match(line):
            self._say(f"dbt: {line.strip()}")
            self._in_problem_block = line.lstrip().startswith("Completed with")
            return
        if self._in_problem_block or (_PROBLEM.search(line) and " START " not in line):
            self._say(f"dbt: {line.strip()}")
