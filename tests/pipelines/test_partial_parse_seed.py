"""The seed of a new data dir's partial parse (pipelines/dbt_partial_parse.py): what it
refuses, and that it changes exactly the two checksums (a real dbt parse checks the
formulas: tests/dagster/test_dbt_partial_parse.py)."""

from __future__ import annotations

from pathlib import Path

import msgpack
from dbt.version import __version__ as dbt_version

from pipelines.dbt_partial_parse import (
    PARTIAL_PARSE_FILE,
    duckdb_profile_checksum,
    seed_partial_parse,
    vars_checksum,
)

VARS = {"has_crm": True, "run_parameters_table": "kam_run.run_parameters"}
OLD_VARS, OLD_PROFILE = "a" * 64, "b" * 64


def _packaged(path: Path, version: str = dbt_version, database: str = "kam_work") -> Path:
    manifest = {
        "metadata": {"dbt_version": version},
        "state_check": {
            "vars_hash": {"name": "sha256", "checksum": OLD_VARS},
            "profile_hash": {"name": "sha256", "checksum": OLD_PROFILE},
        },
        "nodes": {"model.kam.x": {"database": database, "raw_code": "select 1"}},
    }
    path.write_bytes(msgpack.packb(manifest))
    return path


def _seed(tmp_path: Path, packaged: Path, **overrides) -> str:
    kwargs = {
        "cli_vars": VARS,
        "work_db": tmp_path / "data" / "work" / "kam_work.duckdb",
        "memory_limit": "3GB",
        **overrides,
    }
    return seed_partial_parse(packaged, tmp_path / "target", **kwargs)


def test_seed_replaces_the_two_checksums_and_nothing_else(tmp_path: Path) -> None:
    packaged = _packaged(tmp_path / "packaged.msgpack")
    assert _seed(tmp_path, packaged) == "seeded"
    seeded = msgpack.unpackb((tmp_path / "target" / PARTIAL_PARSE_FILE).read_bytes())
    original = msgpack.unpackb(packaged.read_bytes())
    work_db = tmp_path / "data" / "work" / "kam_work.duckdb"
    assert seeded["state_check"]["vars_hash"]["checksum"] == vars_checksum(VARS, dbt_version)
    assert seeded["state_check"]["profile_hash"]["checksum"] == duckdb_profile_checksum(
        work_db, "3GB"
    )
    assert seeded["nodes"] == original["nodes"] and seeded["metadata"] == original["metadata"]


def test_seed_refuses_what_it_cannot_vouch_for(tmp_path: Path) -> None:
    assert _seed(tmp_path, tmp_path / "missing.msgpack").startswith("none packaged")
    other_version = _packaged(tmp_path / "v.msgpack", version="0.0.1")
    assert _seed(tmp_path, other_version).startswith("not seeded: packaged by dbt 0.0.1")
    other_db = _packaged(tmp_path / "d.msgpack", database="parse_only")
    assert _seed(tmp_path, other_db).startswith("not seeded: packaged for database")
    good = _packaged(tmp_path / "g.msgpack")
    no_crm = {**VARS, "has_crm": False}
    assert _seed(tmp_path, good, cli_vars=no_crm).startswith("not seeded: the package")
    assert not (tmp_path / "target" / PARTIAL_PARSE_FILE).exists()


def test_a_data_dirs_own_partial_parse_is_kept(tmp_path: Path) -> None:
    own = tmp_path / "target" / PARTIAL_PARSE_FILE
    own.parent.mkdir()
    own.write_bytes(b"the data dir's own")
    assert _seed(tmp_path, _packaged(tmp_path / "p.msgpack")).startswith("kept")
    assert own.read_bytes() == b"the data dir's own"


def test_checksums_follow_the_work_db_and_the_vars(tmp_path: Path) -> None:
    one = duckdb_profile_checksum(tmp_path / "a" / "kam_work.duckdb", "3GB")
    assert one != duckdb_profile_checksum(tmp_path / "b" / "kam_work.duckdb", "3GB")
    assert one != duckdb_profile_checksum(tmp_path / "a" / "kam_work.duckdb", "2GB")
    assert vars_checksum(VARS, dbt_version) != vars_checksum({**VARS, "x": 1}, dbt_version)


def test_seed_hashes_the_target_the_run_passes(tmp_path: Path) -> None:
    """The pipeline passes DBT_TARGET, which dbt reads as --target and hashes with the vars:
    a seed made without it was refused by dbt on every first run ("config vars, config
    profile, or config target have changed")."""
    packaged = _packaged(tmp_path / "packaged.msgpack")
    assert _seed(tmp_path, packaged, target="duckdb") == "seeded"
    seeded = msgpack.unpackb((tmp_path / "target" / PARTIAL_PARSE_FILE).read_bytes())
    checksum = seeded["state_check"]["vars_hash"]["checksum"]
    assert checksum == vars_checksum(VARS, dbt_version, "duckdb")
    assert checksum != vars_checksum(VARS, dbt_version)
