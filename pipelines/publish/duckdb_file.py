"""Atomic publish of the work DB's marts (and audit) to the DuckDB warehouse file.

The published file is never written in place. A complete new file is built next to it
(same directory, temporary name), written with an older storage version so that BI tools
embedding an older DuckDB can read it, verified, checkpointed and closed (no ``.wal``
left), then swapped in with :func:`os.replace`. Readers that hold the old file open keep
reading the old version; new readers see the new one. Every published file is also kept
as a hard link in ``<warehouse_dir>/versions/`` (the newest ``retention`` are kept).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from pipelines.publish.comments import apply_comments, describe, read_duckdb_comments
from pipelines.publish.ownership import duckdb_warehouse_problem
from pipelines.publish.publish_info import (
    INFO_SCHEMA,
    INFO_TABLE,
    INFO_TABLES_TABLE,
    SCORE_REPORT,
    as_of_filter,
    score_version_query,
    write_publish_info,
)
from pipelines.publish.result import PublishError, PublishResult

log = logging.getLogger(__name__)

VERSIONS_DIR = "versions"
_RESERVED_ALIASES = {"memory", "system", "temp", "main"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STORAGE_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)\+?$")


def publish_duckdb(
    work_db: Path,
    warehouse: Path,
    run_id: str,
    as_of: date,
    schemas: Sequence[str] = ("marts", "audit"),
    storage_version: str = "v1.0.0",
    retention: int = 7,
) -> PublishResult:
    """Publish every table of ``schemas`` in ``work_db`` to ``warehouse`` atomically.

    Schemas absent from the work DB are skipped (at least one table must be found).
    Adds ``marts.publish_info`` (one row) and ``marts.publish_tables`` (one row per
    table). On any error the temporary file is removed and the published file is left
    untouched. The caller must not hold ``work_db`` open read-write in this process.
    """
    started = time.perf_counter()
    work_db = Path(work_db)
    warehouse = Path(warehouse)
    if not isinstance(as_of, date):  # parsed once at the boundary, never here
        raise ValueError(f"as_of must be a date, got {as_of!r}")
    as_of_date = as_of
    if retention < 1:
        raise ValueError("retention must be at least 1 (the published version is kept)")
    if not _STORAGE_VERSION.match(storage_version):
        raise ValueError(f"storage_version must look like v1.0.0, got {storage_version!r}")
    for schema in schemas:
        _check_identifier(schema)
    if not work_db.is_file():
        raise FileNotFoundError(f"work DB not found: {work_db}")
    # never replace what kam did not publish (a folder, the work DB, a foreign file)
    if problem := duckdb_warehouse_problem(warehouse, work_db):
        raise PublishError(problem)

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(warehouse)
    temp = warehouse.parent / f".{warehouse.stem}.{uuid.uuid4().hex}.publishing"
    published_at = datetime.now(UTC)
    version_name = f"{warehouse.stem}__{published_at:%Y%m%dT%H%M%S%fZ}__{_short(run_id)}"
    version_path = warehouse.parent / VERSIONS_DIR / f"{version_name}.duckdb"
    linked = False
    try:
        tables, reported_version = _build_file(
            work_db, temp, list(schemas), storage_version, run_id, as_of_date, published_at
        )
        _verify_file(temp, tables, storage_version)
        version_path.parent.mkdir(exist_ok=True)
        _link_or_copy(temp, version_path)
        linked = True
        _remove_stale_wal(warehouse)
        os.replace(temp, warehouse)
    except BaseException:
        _remove(temp)
        _remove(_wal(temp))
        if linked:
            _remove(version_path)
        raise
    removed = _apply_retention(warehouse, retention)
    seconds = time.perf_counter() - started
    log.info(
        "published %d tables to %s as %s in %.2fs", len(tables), warehouse, version_name, seconds
    )
    return PublishResult(
        target=str(warehouse),
        tables=tables,
        seconds=seconds,
        version=version_name,
        version_path=str(version_path),
        storage_version=reported_version,
        removed_versions=removed,
    )


def file_storage_version(path: Path) -> str:
    """Storage version DuckDB reports for a database file (e.g. ``v1.0.0+``)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return _attached_storage_version(con, _database_name(con))
    finally:
        con.close()


def list_versions(warehouse: Path) -> list[Path]:
    """Kept versions of a warehouse file, oldest first."""
    folder = Path(warehouse).parent / VERSIONS_DIR
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{_glob_escape(Path(warehouse).stem)}__*__*.duckdb"))


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


# --- building the new file -------------------------------------------------------------


def _build_file(
    work_db: Path,
    temp: Path,
    schemas: list[str],
    storage_version: str,
    run_id: str,
    as_of_date: date,
    published_at: datetime,
) -> tuple[dict[str, int], str]:
    # dbt-duckdb qualifies view definitions with the work file's stem as catalog name:
    # attach under that name so views of the work DB resolve.
    work = work_db.stem if _IDENT.match(work_db.stem) else "kam_work"
    if work.lower() in _RESERVED_ALIASES:
        work = "kam_work"
    new = f"kam_publish_{uuid.uuid4().hex[:12]}"
    con = duckdb.connect()
    try:
        con.execute(f"attach {_literal(str(work_db))} as {work} (read_only)")
        con.execute(
            f"attach {_literal(str(temp))} as {new} (storage_version {_literal(storage_version)})"
        )
        sources = _source_relations(con, work, schemas)
        if not sources:
            raise PublishError(f"no tables in schemas {schemas} of {work_db}: nothing to publish")
        if (INFO_SCHEMA, INFO_TABLE) in sources or (INFO_SCHEMA, INFO_TABLES_TABLE) in sources:
            raise PublishError(f"the work DB must not contain {INFO_SCHEMA}.{INFO_TABLE}(s)")
        tables: dict[str, int] = {}
        for schema in sorted({s for s, _ in sources} | {INFO_SCHEMA}):
            con.execute(f"create schema if not exists {new}.{_quote(schema)}")
        for schema, name in sources:
            qualified = f"{_quote(schema)}.{_quote(name)}"
            cut = as_of_filter(schema, name, as_of_date)  # nothing dated after D
            con.execute(f"create table {new}.{qualified} as select * from {work}.{qualified}{cut}")
            source_rows = int(
                con.execute(f"select count(*) from {work}.{qualified}{cut}").fetchall()[0][0]
            )
            copied_rows = _count(con, f"{new}.{qualified}")
            if source_rows != copied_rows:
                raise PublishError(
                    f"{schema}.{name}: copied {copied_rows} rows, source has {source_rows}"
                )
            tables[f"{schema}.{name}"] = copied_rows
        reported_version = _attached_storage_version(con, new)
        score_version = None
        if ".".join(SCORE_REPORT) in tables:
            report = f"{new}.{_quote(SCORE_REPORT[0])}.{_quote(SCORE_REPORT[1])}"
            score_version = con.execute(score_version_query(report)).fetchall()[0][0]
        write_publish_info(
            con.execute,
            f"{new}.{INFO_SCHEMA}",
            tables,
            run_id,
            as_of_date,
            published_at,
            reported_version or storage_version,
            score_version=score_version,
        )
        # the dbt descriptions (persist_docs) travel with the tables: BI tools show them
        comments = describe(read_duckdb_comments(con, work, schemas), _columns(con, new))
        apply_comments(con.execute, comments, lambda s, t: f"{new}.{_quote(s)}.{_quote(t)}", _quote)
        con.execute(f"checkpoint {new}")
        con.execute(f"detach {new}")
        con.execute(f"detach {work}")
    finally:
        con.close()
    if _wal(temp).exists():
        raise PublishError(f"{_wal(temp)} left after closing the new file")
    return tables, reported_version


def _source_relations(
    con: duckdb.DuckDBPyConnection, work: str, schemas: list[str]
) -> list[tuple[str, str]]:
    """Tables and views of the given schemas in the work DB (views are published as tables)."""
    rows = con.execute(
        """
        select schema_name, table_name from duckdb_tables()
        where database_name = ? and list_contains(?, schema_name)
        union all
        select schema_name, view_name from duckdb_views()
        where database_name = ? and list_contains(?, schema_name) and not internal
        order by 1, 2
        """,
        [work, schemas, work, schemas],
    ).fetchall()
    return [(str(schema), str(name)) for schema, name in rows]


def _columns(con: duckdb.DuckDBPyConnection, database: str) -> dict[tuple[str, str], set[str]]:
    """Every table of attached ``database`` -> its column names."""
    out: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in con.execute(
        "select schema_name, table_name, column_name from duckdb_columns() where database_name = ?",
        [database],
    ).fetchall():
        out.setdefault((str(schema), str(table)), set()).add(str(column))
    return out


def _verify_file(path: Path, tables: dict[str, int], storage_version: str) -> None:
    """Re-open the closed new file read-only: row counts and storage version as intended."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        for qualified, expected in tables.items():
            schema, name = qualified.split(".", 1)
            actual = _count(con, f"{_quote(schema)}.{_quote(name)}")
            if actual != expected:
                raise PublishError(f"{qualified}: new file has {actual} rows, expected {expected}")
        reported = _attached_storage_version(con, _database_name(con))
    finally:
        con.close()
    if _wal(path).exists():
        raise PublishError(f"{_wal(path)} left after verifying the new file")
    if reported and _version_tuple(reported) > _version_tuple(storage_version):
        raise PublishError(f"new file has storage version {reported}, wanted {storage_version}")


def _attached_storage_version(con: duckdb.DuckDBPyConnection, database: str) -> str:
    rows = con.execute(
        "select tags from duckdb_databases() where database_name = ?", [database]
    ).fetchall()
    if not rows or not rows[0][0]:
        return ""
    return str(dict(rows[0][0]).get("storage_version", ""))


def _database_name(con: duckdb.DuckDBPyConnection) -> str:
    return str(con.execute("select current_database()").fetchall()[0][0])


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return int(con.execute(f"select count(*) from {relation}").fetchall()[0][0])


# --- swapping and versions -------------------------------------------------------------


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # file system without hard links
        shutil.copy2(source, target)


def _remove_abandoned_builds(warehouse: Path) -> None:
    """Temporary files of a publish that was killed; safe: one pipeline run writes at a time."""
    for stale in warehouse.parent.glob(f".{warehouse.stem}.*.publishing*"):
        log.warning("removing %s left by an interrupted publish", stale)
        _remove(stale)


def _remove_stale_wal(warehouse: Path) -> None:
    """A .wal beside the published file would be replayed onto the new file: drop it."""
    wal = _wal(warehouse)
    if wal.exists():
        log.warning("removing stale %s before publishing", wal)
        wal.unlink()


def _apply_retention(warehouse: Path, retention: int) -> list[str]:
    versions = list_versions(warehouse)
    removed: list[str] = []
    for old in versions[: max(len(versions) - retention, 0)]:
        try:
            old.unlink()
            removed.append(old.name)
        except OSError as exc:  # never fail a publish that already happened
            log.warning("could not remove old version %s: %s", old, exc)
    return removed


# --- small helpers ---------------------------------------------------------------------


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def _short(run_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9]", "", run_id)
    return (cleaned or "run")[:8]


def _check_identifier(name: str) -> None:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _version_tuple(version: str) -> tuple[int, int, int]:
    match = _STORAGE_VERSION.match(version)
    if not match:
        raise PublishError(f"unrecognised storage version {version!r}")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))
