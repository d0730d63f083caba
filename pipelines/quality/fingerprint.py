"""Fingerprints of checked tables: proof that the marts published are the marts checked.

The mart check step records, per run, a fingerprint of every mart it checked (row count
and a content hash computed by DuckDB: the sum of the rows' hashes, so a duplicated row
changes it, unlike a XOR) with each check's verdict, in ``<reports>/<run_id>/`` beside the
run's reports. The publish step recomputes the fingerprint and publishes without running
the checks again only when the same run's record says every mart check passed and the
marts are unchanged (:func:`verify`); otherwise it runs them itself.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.identifiers import quote_identifier
from pipelines.quality.reports import run_dir

RECORD_NAME = "mart_fingerprint.json"


def _relation_sql(relation: str) -> str:
    return ".".join(quote_identifier(part) for part in relation.split("."))


def fingerprint(
    con: duckdb.DuckDBPyConnection, relations: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """``{relation: {"rows": n, "hash": "<sum of row hashes>"}}``, one scan per table."""
    out: dict[str, dict[str, Any]] = {}
    for relation in sorted(set(relations)):
        [(rows, digest)] = con.execute(
            f"select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar "
            f"from {_relation_sql(relation)} t"
        ).fetchall()
        out[relation] = {"rows": int(rows), "hash": str(digest)}
    return out


def fingerprint_db(work_db: Path | str, relations: Iterable[str]) -> dict[str, dict[str, Any]]:
    """:func:`fingerprint` of ``relations`` in the work DB, opened read-only briefly."""
    con = duckdb.connect(str(work_db), read_only=True)
    try:
        return fingerprint(con, relations)
    finally:
        con.close()


def record_path(reports_dir: Path | str, run_id: str) -> Path:
    return run_dir(reports_dir, run_id) / RECORD_NAME


def write_record(
    reports_dir: Path | str,
    run_id: str,
    tables: Mapping[str, Mapping[str, Any]],
    checks: Mapping[str, bool],
) -> Path:
    """Record (merged into the run's record, if any) the fingerprint of the tables a step
    checked and each check's verdict. Written atomically."""
    path = record_path(reports_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = read_record(reports_dir, run_id) or {"run_id": run_id, "tables": {}, "checks": {}}
    record["tables"].update({k: dict(v) for k, v in tables.items()})
    record["checks"].update({k: bool(v) for k, v in checks.items()})
    record["written_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fingerprint_", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


def read_record(reports_dir: Path | str, run_id: str) -> dict[str, Any] | None:
    """The run's record, or None (absent, unreadable or of another run)."""
    try:
        record = json.loads(record_path(reports_dir, run_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("run_id") != run_id:
        return None
    if not isinstance(record.get("tables"), dict) or not isinstance(record.get("checks"), dict):
        return None
    return record


@dataclass
class Verification:
    """Whether the marts are the ones this run's passed checks saw."""

    verified: bool
    reason: str  # why not (or what was verified)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # the fingerprint now


def verify(
    work_db: Path | str,
    reports_dir: Path | str,
    run_id: str,
    check_names: Iterable[str],
    relations: Iterable[str],
) -> Verification:
    """Verified when the run's record has every check of ``check_names`` passed and the
    fingerprint of ``relations`` now equals the recorded one."""
    names, relations = sorted(set(check_names)), sorted(set(relations))
    record = read_record(reports_dir, run_id)
    if record is None:
        return Verification(False, "no mart check recorded in this run (materialized alone)")
    not_passed = [n for n in names if record["checks"].get(n) is not True]
    if not_passed:
        return Verification(
            False, f"{len(not_passed)} mart checks not passed in this run: {', '.join(not_passed)}"
        )
    now = fingerprint_db(work_db, relations)
    changed = [r for r in relations if record["tables"].get(r) != now[r]]
    if changed:
        return Verification(False, f"marts changed since checked: {', '.join(changed)}", now)
    return Verification(
        True, f"{len(relations)} marts unchanged since their {len(names)} checks passed", now
    )
