"""Reading the published warehouse (a DuckDB file or PostgreSQL), read-only, errors masked.

The one reader of the published marts for what is built on them (the brief, ``kam
evaluate``): each query's column names and rows, in one read-only session. Any failure is
raised as the caller's own error class (``error``), saying whether the warehouse could not
be reached, opened or read, with the URL's and the driver message's credentials masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.secrets import mask_text, mask_url, url_secrets
from pipelines.settings import POSTGRES_PREFIXES


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def read_warehouse(
    warehouse: str,
    queries: Sequence[str],
    *,
    error: type[Exception],
    application_name: str = "kam-read",
) -> list[QueryResult]:
    """The result of each query, in order, in one read-only session of ``warehouse``.

    The SQL is plain (no placeholders, no engine-specific functions) so that it runs on
    DuckDB and PostgreSQL alike. Failures raise ``error`` with the warehouse masked.
    """
    shown = mask_url(warehouse)
    if warehouse.startswith(POSTGRES_PREFIXES):
        return _read_postgres(warehouse, queries, error, application_name, shown)
    import duckdb

    if not Path(warehouse).is_file():
        raise error(
            f"no published warehouse at {shown} (KAM_WAREHOUSE / KAM_DATA_DIR): "
            "run `kam run --as-of D` first"
        )
    try:
        con = duckdb.connect(warehouse, read_only=True)
        # no progress bar: at 20,000 clients the history queries drew one on stderr
        con.execute("set enable_progress_bar = false")
    except duckdb.Error as exc:
        raise error(f"the warehouse {shown} cannot be opened: {exc}") from None
    try:
        out = []
        for sql in queries:
            result = con.execute(sql)
            columns = [d[0] for d in result.description]
            out.append(QueryResult(columns, result.fetchall()))
        return out
    except duckdb.Error as exc:
        raise error(f"the warehouse {shown} cannot be read: {exc}") from None
    finally:
        con.close()


def _read_postgres(
    url: str,
    queries: Sequence[str],
    error: type[Exception],
    application_name: str,
    shown: str,
) -> list[QueryResult]:
    from pipelines.publish.pg import pg_connect

    def masked(exc: Exception) -> str:
        return mask_text(f"{type(exc).__name__}: {exc}".strip(), url_secrets(url))

    try:
        conn = pg_connect(url, connect_timeout=10, application_name=application_name)
    except Exception as exc:
        raise error(f"cannot connect to the warehouse {shown}: {masked(exc)}") from None
    try:
        conn.set_session(readonly=True)
        out = []
        with conn.cursor() as cur:
            for sql in queries:
                cur.execute(sql)
                columns = [d[0] for d in cur.description]
                out.append(QueryResult(columns, list(cur.fetchall())))
        return out
    except Exception as exc:
        raise error(f"the warehouse {shown} cannot be read: {masked(exc)}") from None
    finally:
        conn.close()
