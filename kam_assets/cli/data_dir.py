"""A data dir remembers the sources it was built from (``$KAM_DATA_DIR/sources.json``).

Its raw layer, watermarks, row-count history and warehouse all belong to one pair of
sources: pointed at another ERP, the next run would see every table "shrink" and the gates
would (rightly) stop it, or, worse, mix two companies' rows. So every command that runs
or checks the pipeline first compares the configured sources with the recorded ones and
refuses other sources in one line, before anything starts, naming the two ways on: a new
``KAM_DATA_DIR``, or ``kam reset`` (which archives the data dir's state, never deletes it).

The record also lets follow-up commands reuse the sources: with ``KAM_ERP_URL`` unset, a
data dir whose recorded sources carry no credential (the demo's SQLite files, a folder of
files) is run on them again, and the command says so in its first line. A URL with a
password is never written to disk: only its masked form and a hash, so it must be given
again (and is then compared by the hash).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from pipelines.secrets import mask_url, url_secrets
from pipelines.settings import Settings, declared_default

RECORD_NAME = "sources.json"
#: what `kam reset` moves into archive/<time>/ (the demo's generated sources stay: they are
#: sources, not state)
STATE_ENTRIES = ("work", "warehouse", "dagster_home", "reports", "briefs", "dbt", RECORD_NAME)


def source_identity(url: str | None) -> str | None:
    """The source a URL designates, independent of how it was written: a folder or a
    SQLite file by its absolute path, anything else as written."""
    if not url:
        return None
    if "://" not in url:
        return str(Path(url).expanduser().resolve())
    if url.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(url[len("sqlite:///") :]).expanduser().resolve())
    return url


def _digest(identity: str | None) -> str | None:
    return None if identity is None else hashlib.sha256(identity.encode()).hexdigest()


@dataclass(frozen=True)
class SourcesRecord:
    """What a data dir was built from. ``*_url`` only when it carries no credential."""

    erp_shown: str
    erp_digest: str
    crm_shown: str | None
    crm_digest: str | None
    erp_url: str | None
    crm_url: str | None
    partitions_start: str | None
    built_by: str
    recorded_at: str

    @property
    def reusable(self) -> bool:
        """The sources can be used again without the operator giving them."""
        return self.erp_url is not None and (self.crm_digest is None or self.crm_url is not None)

    def describe(self) -> str:
        crm = self.crm_shown or "none (orders only)"
        return f"ERP {self.erp_shown}, CRM {crm}"


def _record_path(data_dir: Path) -> Path:
    return data_dir / RECORD_NAME


def read_record(data_dir: Path) -> SourcesRecord | None:
    path = _record_path(data_dir)
    if not path.is_file():
        return None
    try:
        return SourcesRecord(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None  # unreadable: treated as absent, rewritten at the next run


def _shareable(url: str | None) -> str | None:
    """The URL itself when it holds no credential (safe on disk), else None."""
    if url is None or url_secrets(url):
        return None
    return source_identity(url)


def make_record(settings: Settings, built_by: str, partitions_start: str | None) -> SourcesRecord:
    assert settings.erp_url is not None
    return SourcesRecord(
        erp_shown=mask_url(settings.erp_url),
        erp_digest=_digest(source_identity(settings.erp_url)) or "",
        crm_shown=mask_url(settings.crm_url) if settings.crm_url else None,
        crm_digest=_digest(source_identity(settings.crm_url)),
        erp_url=_shareable(settings.erp_url),
        crm_url=_shareable(settings.crm_url),
        partitions_start=partitions_start,
        built_by=built_by,
        recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write_record(data_dir: Path, record: SourcesRecord) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = _record_path(data_dir).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record.__dict__, indent=2) + "\n")
    os.replace(tmp, _record_path(data_dir))


def has_state(settings: Settings) -> bool:
    """Whether the data dir holds anything a run built (a work DB or a warehouse in it)."""
    return settings.work_db.exists() or (settings.data_dir / "warehouse").exists()


def kam_executable() -> str:
    """The `kam` of this installation, as a path a shell can run from any folder."""
    return str(Path(sys.executable).with_name("kam"))


#: the settings that locate a data dir, its warehouse and instance
_LOCATING = ("KAM_DATA_DIR", "KAM_WAREHOUSE", "DAGSTER_HOME")
#: their values as the operator set them, before `kam` exported its own (DAGSTER_HOME)
_operator_env: dict[str, str] | None = None


def _locating_env() -> dict[str, str]:
    """The locating settings as given, KAM_DATA_DIR always (absolute: the default ./data
    depends on the folder a command is started from)."""
    given = {n: os.environ[n] for n in _LOCATING if os.environ.get(n, "").strip()}
    data_dir = given.get("KAM_DATA_DIR") or str(declared_default("data_dir"))
    given["KAM_DATA_DIR"] = str(Path(data_dir).expanduser().resolve())
    return {n: given[n] for n in _LOCATING if n in given}


def capture_operator_env() -> None:
    """Remember the locating settings the operator gave (called first by ``kam``'s main)."""
    global _operator_env
    _operator_env = _locating_env()


def forget_operator_env() -> None:
    global _operator_env
    _operator_env = None


def command_line(*args: str) -> str:
    """A kam command as the operator can paste it, from any folder: the settings that
    locate this data dir and warehouse (those the operator set; KAM_DATA_DIR always)
    prefixed, then the kam executable."""
    given = _operator_env if _operator_env is not None else _locating_env()
    env = [f"{name}={shlex.quote(value)}" for name, value in given.items()]
    return " ".join([*env, shlex.quote(kam_executable()), *map(shlex.quote, args)])


def mismatch(settings: Settings, record: SourcesRecord) -> str | None:
    """Why the configured sources are not the ones the data dir was built from (one line,
    naming both and the ways on), or None when they are the same."""
    same = _digest(source_identity(settings.erp_url)) == record.erp_digest and _digest(
        source_identity(settings.crm_url)
    ) == (record.crm_digest)
    if same:
        return None
    crm = mask_url(settings.crm_url) if settings.crm_url else "none (orders only)"
    return (
        f"KAM_DATA_DIR={settings.data_dir} was built from {record.describe()}, not from "
        f"ERP {mask_url(settings.erp_url)}, CRM {crm}: give these sources their own "
        f"KAM_DATA_DIR, or archive this one's state with `{command_line('reset')}`"
    )


def reuse_recorded_sources(settings: Settings) -> SourcesRecord | None:
    """With KAM_ERP_URL unset, the data dir's recorded sources put into the environment
    (and the recorded first partition, when KAM_PARTITIONS_START is unset); the record
    used, or None. The caller reloads the settings and says so."""
    record = read_record(settings.data_dir)
    if record is None:
        return None
    if not os.environ.get("KAM_PARTITIONS_START", "").strip() and record.partitions_start:
        os.environ["KAM_PARTITIONS_START"] = record.partitions_start
    if settings.erp_url or not record.reusable:
        return None
    os.environ["KAM_ERP_URL"] = record.erp_url or ""
    if record.crm_url:
        os.environ["KAM_CRM_URL"] = record.crm_url
    else:
        os.environ.pop("KAM_CRM_URL", None)
    return record


def remember_first_order_month(settings: Settings) -> str | None:
    """After a data dir's first successful run: the first day of the month of its first
    order (the work DB's raw orders) becomes the data dir's first partition, unless one was
    given (KAM_PARTITIONS_START, recorded) — so the UI's partitions, started by `kam dev` in
    this data dir, begin with the data and its "missing" counts mean something. The date
    recorded, or None."""
    import duckdb

    record = read_record(settings.data_dir)
    if record is None or record.partitions_start or not settings.work_db.is_file():
        return None
    try:
        with duckdb.connect(str(settings.work_db), read_only=True) as con:
            (first,) = con.execute(
                "select min(cast(order_date as date)) from raw_erp.orders"
            ).fetchall()[0]
    except duckdb.Error:
        return None  # no raw orders to learn from: the default stays
    if first is None:
        return None
    start = first.replace(day=1).isoformat()
    write_record(settings.data_dir, replace(record, partitions_start=start))
    return start


def archive_state(settings: Settings) -> tuple[Path, list[str]]:
    """Move the data dir's state (work DB, warehouse, Dagster home, reports, briefs, dbt
    files, the sources record) into ``archive/<UTC time>/``; nothing is deleted."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = settings.data_dir / "archive" / stamp
    moved = []
    for name in STATE_ENTRIES:
        path = settings.data_dir / name
        if path.exists():
            target.mkdir(parents=True, exist_ok=True)
            os.replace(path, target / name)
            moved.append(name)
    return target, moved
