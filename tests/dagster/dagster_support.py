"""Helpers shared by the Dagster end-to-end tests."""

from __future__ import annotations


def step_failures(result) -> dict[str, str]:
    """Failed steps of a run and their error messages, causes included."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error, texts = event.event_specific_data.error, []
            while error is not None:
                texts.append(error.message)
                error = error.cause
            out[event.step_key] = "\n".join(texts)
    return out
