"""A first run in a new data dir reuses the packaged partial parse instead of re-parsing.

dbt reuses ``partial_parse.msgpack`` only when its state check matches the command: a hash
of the ``--vars`` and a hash of the profile's connection values. The packaged one
(``make setup``: ``dbt parse`` without vars, another work DB) matches neither in a fresh
data dir, so the first run re-parsed the whole project: 6.6 s on the 2-core machine, paid
by every new data dir (and by every end-to-end test). Neither difference changes what the
parse produced here:

* the vars reach the models only in SQL bodies, rendered when dbt compiles (never in a
  ``config()``, a ``ref`` or a ``source``; tests/dbt/test_project_rules.py holds it);
* the profile's values differ only in the DuckDB file's ``path`` (what dbt connects to);
  the ``database`` name the nodes carry is the file's stem and is checked here to be the
  same; ``memory_limit`` is a connection option (``config_options``).

So :func:`seed_partial_parse` copies the packaged file into the data dir's target with the
two checksums replaced by the ones dbt computes for this run (same formulas, same dbt
version; tests/dagster/test_dbt_partial_parse.py checks them against a real parse and
checks the seeded run's manifest against a full parse). Anything unexpected -- an unknown
dbt version, another database name, a checksum not found exactly once -- leaves no seed:
dbt then re-parses as before (slower, never wrong).
"""

from __future__ import annotations

import pprint
from collections.abc import Mapping
from hashlib import sha256
from pathlib import Path
from typing import Any

PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def _checksum(text: str) -> str:
    return sha256(text.encode("utf-8")).hexdigest()  # dbt's FileHash.from_contents


def vars_checksum(cli_vars: Mapping[str, Any], dbt_version: str, target: str = "") -> str:
    """dbt's state-check hash of ``--vars``, no ``--profile``, and ``target``: the
    ``--target`` dbt was given ('' for none; the pipeline passes ``DBT_TARGET``, which dbt
    reads as ``--target``, so a seed made without it made every first run re-parse)."""
    return _checksum("\x00".join([pprint.pformat(dict(cli_vars)), "", target, dbt_version]))


def duckdb_profile_checksum(work_db: Path, memory_limit: str) -> str:
    """dbt's state-check hash of the connection values of dbt/profiles.yml for this work DB."""
    from dbt.adapters.duckdb.credentials import DuckDBCredentials

    credentials = DuckDBCredentials.from_dict(
        {
            "path": str(work_db),
            "database": work_db.stem,
            "schema": "main",
            "config_options": {"memory_limit": memory_limit},
        }
    )
    return _checksum(pprint.pformat(sorted(credentials.connection_info())))


def seed_partial_parse(
    packaged: Path,
    target_dir: Path,
    *,
    cli_vars: Mapping[str, Any],
    work_db: Path,
    memory_limit: str,
    target: str = "",
) -> str:
    """Seed ``target_dir`` with ``packaged`` made valid for this run; returns what was done
    (for the step's log): ``seeded``, or why not."""
    import msgpack
    from dbt.version import __version__ as dbt_version

    destination = target_dir / PARTIAL_PARSE_FILE
    if not cli_vars.get("has_crm", True):
        # packaged with the project's default (a CRM); refs never depend on it today, but
        # nothing holds that: an orders-only company pays one full parse in a new data dir
        return "not seeded: the package was parsed with has_crm true"
    if destination.exists():
        return "kept (the data dir's own)"
    if not packaged.is_file():
        return f"none packaged at {packaged}"
    raw = packaged.read_bytes()
    try:
        manifest = msgpack.unpackb(raw, strict_map_key=False, raw=False)
        state = manifest["state_check"]
        old_vars = state["vars_hash"]["checksum"]
        old_profile = state["profile_hash"]["checksum"]
        version = manifest["metadata"]["dbt_version"]
        databases = {node.get("database") for node in manifest["nodes"].values()}
    except Exception as exc:  # unreadable or another layout: dbt decides by itself
        return f"not seeded: packaged file unreadable ({type(exc).__name__})"
    if version != dbt_version:
        return f"not seeded: packaged by dbt {version}, running {dbt_version}"
    if databases - {work_db.stem}:
        return f"not seeded: packaged for database {sorted(map(str, databases))}"
    new_vars = vars_checksum(cli_vars, dbt_version, target)
    new_profile = duckdb_profile_checksum(work_db, memory_limit)
    seeded = raw
    for old, new in ((old_vars, new_vars), (old_profile, new_profile)):
        if old == new:
            continue
        if seeded.count(old.encode()) != 1:
            return "not seeded: a checksum is not found exactly once"
        seeded = seeded.replace(old.encode(), new.encode())
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".seeding")
    partial.write_bytes(seeded)
    partial.replace(destination)  # atomic: dbt never reads half a file
    return "seeded"
