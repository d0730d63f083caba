"""Opening a source: a SQLAlchemy URL (retried with backoff) or a folder path.

Credentials never appear in messages: every URL shown is masked (``pipelines.secrets``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pipelines.extract.base import Source, SourceUnavailableError
from pipelines.extract.folder_source import FolderSource
from pipelines.extract.sql_source import SqlSource, engine_options, with_installed_driver
from pipelines.secrets import mask_text, mask_url, url_secrets

log = logging.getLogger(__name__)


def is_sql_url(url: str) -> bool:
    return "://" in url and not url.lower().startswith("file://")


def _open_sql(
    system: str, url: str, attempts: int, backoff_seconds: float, connect_timeout: float
) -> SqlSource:
    masked = mask_url(url)
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            in_file = database and database != ":memory:" and not database.startswith("file:")
            if in_file and not Path(database).is_file():
                raise SourceUnavailableError(
                    f"{system} source {masked}: SQLite file {database} does not exist"
                )
        url = with_installed_driver(url)
        engine = sa.create_engine(url, **engine_options(url, connect_timeout))
    except SourceUnavailableError:
        raise
    except Exception as exc:  # bad URL, missing driver
        raise SourceUnavailableError(
            f"{system} source {masked}: cannot use this URL "
            f"({type(exc).__name__}: {mask_text(str(exc), url_secrets(url))})"
        ) from None
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect():
                pass
            return SqlSource(system, url, engine)
        except (sa.exc.DBAPIError, OSError) as exc:
            last = exc
            log.warning(
                "%s source %s: connection attempt %d/%d failed", system, masked, attempt, attempts
            )
            if attempt < attempts:
                time.sleep(backoff_seconds * 2 ** (attempt - 1))
    engine.dispose()
    detail = getattr(last, "orig", last)
    raise SourceUnavailableError(
        f"{system} source {masked} is unreachable after {attempts} attempts "
        f"({type(detail).__name__}: {mask_text(str(detail).strip(), url_secrets(url))})"
    ) from None


def open_source(
    system: str,
    url: str,
    *,
    attempts: int = 3,
    backoff_seconds: float = 1.0,
    connect_timeout: float = 10.0,
    csv_encoding: str = "utf-8",
) -> Source:
    """Open the source of ``system`` ('erp' or 'crm') at ``url``.

    ``url`` is a SQLAlchemy URL or the path of a folder of CSV/Parquet files. A database
    that cannot be reached is retried ``attempts`` times with exponential backoff, then
    :class:`SourceUnavailableError` is raised naming the system and the masked URL.
    ``csv_encoding`` is the encoding of the CSV files of a folder (KAM_CSV_ENCODING).
    """
    if system not in ("erp", "crm"):
        raise ValueError(f"unknown source system {system!r} (expected 'erp' or 'crm')")
    if not url or not str(url).strip():
        raise ValueError(f"no URL given for the {system} source")
    url = str(url).strip()
    if is_sql_url(url):
        return _open_sql(system, url, max(1, attempts), backoff_seconds, connect_timeout)
    folder = Path(url.removeprefix("file://")).expanduser()
    if not folder.is_dir():
        raise SourceUnavailableError(f"{system} source {folder}: folder does not exist")
    return FolderSource(system, folder, csv_encoding)
