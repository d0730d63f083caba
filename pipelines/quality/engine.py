"""The Great Expectations engine: validate a pandas frame, turn GX results into outcomes.

GX's SQL datasource is broken on DuckDB, so checks validate pandas frames read from
DuckDB. One ephemeral GX context, one pandas datasource and one batch definition serve
every validation of a process (a Dagster step): only the suite and the batch are new per
validation. A GX exception is a FAILED check, never a pass.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import pandas as pd

from pipelines.quality.checks import SAMPLE_SIZE, CheckOutcome


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


#: (context, batch definition) of the process: reused while ``_context()`` returns it
_BATCH_DEFINITION: list[tuple[Any, Any]] = []


def _batch_definition(context: Any) -> Any:
    """The one whole-dataframe batch definition of ``context`` (made at first use)."""
    if _BATCH_DEFINITION and _BATCH_DEFINITION[0][0] is context:
        return _BATCH_DEFINITION[0][1]
    source = context.data_sources.add_pandas(f"kam_{uuid.uuid4().hex[:12]}")
    batch_def = source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")
    _BATCH_DEFINITION[:] = [(context, batch_def)]
    return batch_def


#: GX kwargs the engine adds to stack several frames in one batch (not the check's own)
ENGINE_KWARGS = ("batch_id", "row_condition", "condition_parser")


def _plain(value: Any) -> Any:
    """Make a sample value JSON-friendly."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _exception_text(exception_info: Any) -> str | None:
    """The first raised exception in a GX result's exception_info, if any."""
    if not exception_info:
        return None
    infos = [exception_info]
    if isinstance(exception_info, Mapping) and "raised_exception" not in exception_info:
        infos = list(exception_info.values())
    for info in infos:
        get = info.get if isinstance(info, Mapping) else lambda k, i=info: getattr(i, k, None)
        if get("raised_exception"):
            return str(get("exception_message") or "exception raised")
    return None


def _column_of(kwargs: Mapping[str, Any]) -> str:
    return (
        kwargs.get("column")
        or ",".join(kwargs.get("column_list") or [])
        or ",".join(c for c in (kwargs.get("column_A"), kwargs.get("column_B")) if c)
    )


def _sample_rows(df: pd.DataFrame, index: Sequence[Any] | None) -> list[dict[str, Any]]:
    """The frame's rows at GX's ``partial_unexpected_index_list`` (first SAMPLE_SIZE)."""
    if not index:
        return []
    labels = [i for i in list(index)[:SAMPLE_SIZE] if i in df.index]
    return [
        {str(k): _plain(v) for k, v in row.items()}
        for row in df.loc[labels].to_dict(orient="records")
    ]


def expectation_details(res: Any, df: pd.DataFrame) -> dict[str, Any]:
    """One GX ``ExpectationValidationResult`` as plain data, with sample failing rows."""
    config = res.expectation_config
    kwargs = {k: v for k, v in (dict(config.kwargs) if config is not None else {}).items()}
    for key in ENGINE_KWARGS:
        kwargs.pop(key, None)
    details = res.result or {}
    error = _exception_text(res.exception_info)
    out: dict[str, Any] = {
        "expectation": config.type if config is not None else "unknown",
        "column": _column_of(kwargs),
        "kwargs": _plain(kwargs),
        "success": bool(res.success) and not error,
        "element_count": details.get("element_count"),
        "unexpected_count": details.get("unexpected_count"),
        "unexpected_percent": _plain(details.get("unexpected_percent")),
        "sample": _plain(list(details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]),
        "sample_rows": _sample_rows(df, details.get("partial_unexpected_index_list")),
    }
    if "observed_value" in details:
        out["observed_value"] = _plain(details["observed_value"])
    if error:
        out["error"] = error
    return out


def failure(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The compact failure record kept in ``CheckOutcome.failures`` (and Dagster metadata)."""
    keys = ("expectation", "column", "unexpected_count", "unexpected_percent", "sample")
    failure = {k: detail.get(k) for k in keys}
    for optional in ("sample_rows", "observed_value", "error"):
        if detail.get(optional) not in (None, []):
            failure[optional] = detail[optional]
    return failure


def _signature(expectation: Any) -> str:
    """What makes two expectations the same for a GX suite (which keeps one of them)."""
    kwargs = dict(expectation.configuration.kwargs)
    kwargs.pop("batch_id", None)
    return f"{expectation.expectation_type}:{sorted((k, repr(v)) for k, v in kwargs.items())}"


POSITION = "kam_position"


def validate_frame(df: pd.DataFrame, expectations: Sequence[Any], name: str) -> CheckOutcome:
    """Validate ``df`` against GX expectations; any GX exception makes the outcome fail.

    ``results`` (and ``gx_result["results"]``) follow the order of ``expectations``: GX
    orders its results its own way and keeps one of equal expectations, so each distinct
    expectation is sent once, tagged with its position, and its result given back to every
    position that asked for it.
    """
    started = time.perf_counter()
    outcome = CheckOutcome(success=False, evaluated=len(expectations), name=name, rows=len(df))
    if not expectations:
        outcome.error = "no expectations to evaluate"
        return outcome
    try:
        import great_expectations as gx

        context = _context()
        batch = _batch_definition(context).get_batch(batch_parameters={"dataframe": df})
        suite = gx.ExpectationSuite(name=f"{name or 'frame'}_{uuid.uuid4().hex[:6]}")
        first: dict[str, int] = {}  # signature -> position of the one sent
        sent_for: list[int] = []  # position -> position of the one sent
        for position, expectation in enumerate(expectations):
            signature = _signature(expectation)
            if signature not in first:
                first[signature] = position
                tagged = copy.deepcopy(expectation)
                tagged.meta = {**dict(tagged.meta or {}), POSITION: position}
                suite.add_expectation(tagged)
            sent_for.append(first[signature])
        result = batch.validate(suite, result_format="SUMMARY")
    except Exception as exc:  # a GX exception is a failed check, never a pass
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.seconds = time.perf_counter() - started
        return outcome

    by_position: dict[int, Any] = {}
    for res in result.results:
        meta = dict((res.expectation_config.meta if res.expectation_config else None) or {})
        if isinstance(meta.get(POSITION), int):
            by_position[meta[POSITION]] = res
    raw: dict[str, Any] = {}
    with contextlib.suppress(Exception):  # the raw GX result is a report extra only
        raw = _plain(result.to_json_dict())
        raw_results = {}
        for entry in raw.get("results") or []:
            config = entry.get("expectation_config") or {}
            meta = config.get("meta") or {}
            if isinstance(meta.get(POSITION), int):
                raw_results[meta.pop(POSITION)] = entry
        raw["results"] = [raw_results.get(p) for p in sent_for if p in raw_results]
        outcome.gx_result = raw
    missing = [p for p in sorted(first.values()) if p not in by_position]
    outcome.evaluated = len(expectations) - sum(1 for p in sent_for if p in missing)
    for position in sent_for:
        if position in missing:
            continue
        try:
            detail = expectation_details(by_position[position], df)
        except Exception as exc:  # unreadable result: a failure, never a pass
            detail = {"expectation": "unknown", "column": "", "success": False}
            detail["error"] = f"cannot read GX result: {type(exc).__name__}: {exc}"
        outcome.results.append(detail)
        if not detail["success"]:
            outcome.failures.append(failure(detail))
    outcome.success = bool(result.success) and not outcome.failures
    if outcome.evaluated != len(expectations):  # an expectation silently dropped is a failure
        outcome.success = False
        outcome.error = f"{len(expectations)} expectations given, {outcome.evaluated} evaluated"
    outcome.seconds = time.perf_counter() - started
    return outcome
