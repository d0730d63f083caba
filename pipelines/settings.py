"""Every setting of the pipeline, read from the environment in one place.

Nothing here touches the disk or the network; paths are resolved lazily.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :meth:`from_env`."""

    erp_url: str | None
    crm_url: str | None
    warehouse: str
    data_dir: Path
    chunk_rows: int
    schedule_time: str
    schedule_timezone: str
    partitions_start: str
    duckdb_storage_version: str
    warehouse_retention: int
    bi_role: str = "kam_bi"
    pg_lock_timeout_ms: int = 2000
    pg_publish_retries: int = 5
    # quality gate (issue: quarantine and batch-level gates)
    quarantine_max_share: float = 0.01
    row_drop_max_share: float = 0.2
    revenue_band_days: int = 56
    revenue_band_k: float = 10.0
    log_level: str = "INFO"
    report_retention_days: int = 30

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("KAM_DATA_DIR", "./data")).expanduser().resolve()
        return cls(
            erp_url=_env("KAM_ERP_URL"),
            crm_url=_env("KAM_CRM_URL"),
            warehouse=_env("KAM_WAREHOUSE", str(data_dir / "warehouse" / "kam.duckdb")),
            data_dir=data_dir,
            chunk_rows=int(_env("KAM_CHUNK_ROWS", "50000")),
            schedule_time=_env("KAM_SCHEDULE_TIME", "06:00"),
            schedule_timezone=_env("KAM_SCHEDULE_TIMEZONE", "UTC"),
            partitions_start=_env("KAM_PARTITIONS_START", "2020-01-01"),
            duckdb_storage_version=_env("KAM_DUCKDB_STORAGE_VERSION", "v1.0.0"),
            warehouse_retention=int(_env("KAM_WAREHOUSE_RETENTION", "7")),
            bi_role=_env("KAM_BI_ROLE", "kam_bi"),
            pg_lock_timeout_ms=int(_env("KAM_PG_LOCK_TIMEOUT_MS", "2000")),
            pg_publish_retries=int(_env("KAM_PG_PUBLISH_RETRIES", "5")),
            quarantine_max_share=float(_env("KAM_QUARANTINE_MAX_SHARE", "0.01")),
            row_drop_max_share=float(_env("KAM_ROW_DROP_MAX_SHARE", "0.2")),
            revenue_band_days=int(_env("KAM_REVENUE_BAND_DAYS", "56")),
            revenue_band_k=float(_env("KAM_REVENUE_BAND_K", "10.0")),
            log_level=_env("KAM_LOG_LEVEL", "INFO").upper(),
            report_retention_days=int(_env("KAM_REPORT_RETENTION_DAYS", "30")),
        )

    @property
    def work_db(self) -> Path:
        """The working DuckDB file: raw layer and dbt models live here, never read by BI."""
        return self.data_dir / "work" / "kam_work.duckdb"

    @property
    def demo_dir(self) -> Path:
        return self.data_dir / "demo"

    @property
    def reports_dir(self) -> Path:
        """Per-run validation reports (HTML) and quarantine extracts."""
        return self.data_dir / "reports"

    @property
    def warehouse_is_postgres(self) -> bool:
        return self.warehouse.startswith(("postgresql://", "postgresql+", "postgres://"))
