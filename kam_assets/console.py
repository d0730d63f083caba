"""The console logger of kam's runs: one short line per message, failures without stack
traces (unless the log level is DEBUG), so the first lines of a failure say what is wrong.

Replaces Dagster's default ``console`` logger for every job of the code location; the UI
and the run storage keep every event with its full error.
"""

from __future__ import annotations

import ast
import logging
import re
import sys

import dagster as dg

_FAILURES = ("STEP_FAILURE", "RUN_FAILURE")


def _error_text(error, with_stack: bool) -> str:
    parts = []
    while error is not None and len(parts) < 10:
        text = (error.message or "").strip()
        if with_stack and getattr(error, "stack", None):
            text += "\n" + "".join(error.stack).rstrip()
        if text:
            parts.append(text)
        error = error.cause or getattr(error, "context", None)
    return "\n  caused by: ".join(parts)


_NOT_EXECUTING = re.compile(
    r"^Dependencies for step (?P<step>\S+?)(?: failed: (?P<failed>\[.*?\]))?"
    r"(?: were not executed: (?P<abandoned>\[.*?\]))?\. Not executing\.$"
)


class OnceAFailure(logging.Filter):
    """Dagster logs "Dependencies for step X failed: ['quality_gates', 'quality_gates', ...].
    Not executing." for every step downstream of a failure (8-13 lines in a failed run,
    each listing the same step once per input): the console says it once per failed step,
    naming the first step not executed; later ones (and the steps whose inputs were merely
    not executed) add nothing. The run storage and the UI keep every event."""

    def __init__(self) -> None:
        super().__init__()
        self._reported: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        match = _NOT_EXECUTING.match(meta.get("orig_message") or record.getMessage())
        if match is None:
            return True
        failed = list(dict.fromkeys(ast.literal_eval(match["failed"] or "[]")))
        new = [step for step in failed if step not in self._reported]
        if not new:
            return False
        self._reported.update(new)
        record.kam_message = (
            f"not executed: {match['step']} and the steps after it ({', '.join(new)} failed)"
        )
        return True


class KamFormatter(logging.Formatter):
    def __init__(self, with_stack: bool) -> None:
        super().__init__()
        self._with_stack = with_stack

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        when = self.formatTime(record, "%H:%M:%S")
        where = meta.get("step_key") or "run"
        message = getattr(record, "kam_message", None) or meta.get("orig_message")
        message = message or record.getMessage()
        event = meta.get("dagster_event")
        if event is not None and event.event_type_value in _FAILURES:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                message = f"FAILED: {_error_text(error, self._with_stack)}"
        return f"{when} {where}: {message}"


@dg.logger(
    config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO")},
    description="kam's console: short lines, failures without stack traces unless DEBUG",
)
def kam_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    level = init_context.logger_config["log_level"].upper()
    logger = logging.Logger("kam", level=level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KamFormatter(with_stack=level == "DEBUG"))
    handler.addFilter(OnceAFailure())
    logger.addHandler(handler)
    return logger
