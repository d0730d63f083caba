"""What a publish returns, and how it fails (shared by the DuckDB and PostgreSQL publishers)."""

from __future__ import annotations

from dataclasses import dataclass, field


class PublishError(RuntimeError):
    """The new warehouse version could not be built or verified; nothing was published."""


@dataclass
class PublishResult:
    target: str  # the published warehouse file, or the masked PostgreSQL URL
    tables: dict[str, int]  # "schema.table" -> row count, as published
    seconds: float
    version: str  # name of the kept version file (without .duckdb), or the run suffix
    version_path: str = ""
    storage_version: str = ""  # as reported by DuckDB for the published file, e.g. "v1.0.0+"
    removed_versions: list[str] = field(default_factory=list)
