"""Read-only queries against the published warehouse (a DuckDB file or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.publish.read import read_warehouse


class BriefError(RuntimeError):
    """The brief cannot be built: no warehouse, or it lacks what the brief needs."""


def fetch(warehouse: str, queries: Sequence[str]) -> list[list[dict[str, Any]]]:
    """Rows (as dicts) of each query, in one read-only session (``read_warehouse``)."""
    results = read_warehouse(warehouse, queries, error=BriefError, application_name="kam-brief")
    return [result.dicts() for result in results]
