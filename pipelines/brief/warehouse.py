"""Read-only queries against the published warehouse (a DuckDB file or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.secrets import mask_text, mask_url, url_secrets

POSTGRES_PREFIXES = ("postgresql://", "postgresql+", "postgres://")


class BriefError(RuntimeError):
    """The brief cannot be built: no warehouse, or it lacks what the brief needs."""


def fetch(warehouse: str, queries: Sequence[str]) -> list[list[dict[str, Any]]]:
    """Rows (as dicts) of each query, in one read-only session. The SQL is plain (no
    placeholders, no engine-specific functions) so it runs on DuckDB and PostgreSQL."""
    shown = mask_url(warehouse)
    if warehouse.startswith(POSTGRES_PREFIXES):
        from pipelines.publish.pg import pg_connect

        try:
            conn = pg_connect(warehouse, connect_timeout=10, application_name="kam-brief")
        except Exception as exc:
            detail = mask_text(f"{type(exc).__name__}: {exc}".strip(), url_secrets(warehouse))
            raise BriefError(f"cannot connect to the warehouse {shown}: {detail}") from None
        try:
            conn.set_session(readonly=True)
            out = []
            with conn.cursor() as cur:
                for sql in queries:
                    cur.execute(sql)
                    names = [d[0] for d in cur.description]
                    out.append([dict(zip(names, row, strict=True)) for row in cur.fetchall()])
            return out
        except Exception as exc:
            detail = mask_text(f"{type(exc).__name__}: {exc}".strip(), url_secrets(warehouse))
            raise BriefError(f"the warehouse {shown} cannot be read: {detail}") from None
        finally:
            conn.close()
    import duckdb

    if not Path(warehouse).is_file():
        raise BriefError(
            f"no published warehouse at {shown} (KAM_WAREHOUSE / KAM_DATA_DIR): "
            "run `kam run --as-of D` first"
        )
    try:
        con = duckdb.connect(warehouse, read_only=True)
    except duckdb.Error as exc:
        raise BriefError(f"the warehouse {shown} cannot be opened: {exc}") from None
    try:
        out = []
        for sql in queries:
            result = con.execute(sql)
            names = [d[0] for d in result.description]
            out.append([dict(zip(names, row, strict=True)) for row in result.fetchall()])
        return out
    except duckdb.Error as exc:
        raise BriefError(f"the warehouse {shown} cannot be read: {exc}") from None
    finally:
        con.close()
