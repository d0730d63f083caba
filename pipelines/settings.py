"""Every setting of the pipeline: declared once, read from the environment and validated here.

Each setting is one :class:`Setting` in :data:`SETTINGS`: its environment variable, its one
default, how its text is read and checked, and what it means (the README's configuration
table is generated from this list: ``python -m pipelines.settings``, and a test keeps the two
equal). :meth:`Settings.from_env` reads them all and raises :class:`SettingsError` naming
every variable that is wrong, its value and what is allowed, before any work is done.

Nothing here touches the disk or the network; paths are resolved, not created.
dbt's ``profiles.yml`` reads ``KAM_WORK_DB``, ``KAM_DBT_THREADS`` and
``KAM_DUCKDB_MEMORY_LIMIT``, and dbt reads ``DBT_TARGET`` (from ``KAM_DBT_TARGET``): the
pipeline sets them from these settings for the dbt process (:meth:`Settings.dbt_env`), so
they are not read from the operator's environment anywhere else.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines.identifiers import validate_role_name
from pipelines.secrets import mask_url


class SettingsError(ValueError):
    """One or more settings are invalid; the message names each variable."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


# --------------------------------------------------------------------------- parsers
# Each parser takes (variable name, raw text) and returns the value or raises ValueError
# with a message that says what is allowed (the variable and value are added by the caller).


def _text(_name: str, raw: str) -> str:
    return raw


def _optional_text(_name: str, raw: str) -> str | None:
    return raw or None


def _int_between(minimum: int, maximum: int, why: str) -> Callable[[str, str], int]:
    """A whole number in [minimum, maximum]; ``why`` says where the bounds come from."""

    def parse(_name: str, raw: str) -> int:
        allowed = f"must be a whole number from {minimum:,} to {maximum:,} ({why})"
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(allowed) from None
        if not minimum <= value <= maximum:
            raise ValueError(allowed)
        return value

    return parse


def _schema_prefix(name: str, raw: str) -> str:
    if raw == "":
        return raw
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,39}", raw):
        raise ValueError(
            "must be lower-case letters, digits and underscores (at most 40, not starting "
            "with a digit), e.g. kam_"
        )
    if raw.startswith("pg_"):
        raise ValueError("must not start with pg_ (reserved by PostgreSQL)")
    return raw


def _int_at_least(minimum: int) -> Callable[[str, str], int]:
    def parse(_name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number of at least {minimum}") from None
        if value < minimum:
            raise ValueError(f"must be a whole number of at least {minimum}")
        return value

    return parse


_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def _memory_size(_name: str, raw: str) -> str:
    if not _MEMORY.match(raw):
        raise ValueError("must be a size such as 3GB, 512MB or 1.5GiB")
    return raw.replace(" ", "")


def _share(_name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a share between 0 and 1 (e.g. 0.01 for 1 %)") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be a share between 0 and 1 (e.g. 0.01 for 1 %)")
    return value


def _positive_number(_name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a positive number") from None
    if not (value > 0 and value != float("inf")):
        raise ValueError("must be a positive number")
    return value


def _hh_mm(_name: str, raw: str) -> str:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError("must be a time of day HH:MM (00:00 to 23:59)")
    return f"{int(match[1]):02d}:{match[2]}"


def _time_zone(_name: str, raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as UTC or Europe/Berlin") from None
    return raw


def _iso_date(_name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError("must be a date YYYY-MM-DD") from None


def _yes_no(_name: str, raw: str) -> bool:
    if raw.lower() in ("true", "yes", "1"):
        return True
    if raw.lower() in ("false", "no", "0"):
        return False
    raise ValueError("must be true or false")


def _storage_version(_name: str, raw: str) -> str:
    if not re.fullmatch(r"v\d+\.\d+\.\d+", raw):
        raise ValueError("must be a DuckDB storage version such as v1.0.0")
    return raw


def _role(name: str, raw: str) -> str:
    return validate_role_name(raw, name)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


#: a currency as the reason texts show it after an amount: an ISO 4217 code or a sign
#: (it is written into the dbt SQL: nothing else may pass)
_CURRENCY = re.compile(r"^(?:[A-Z]{3}|[$€£¥₹₽₩₺₴₪₫฿₦₱])$")


def _currency(_name: str, raw: str) -> str:
    if not _CURRENCY.match(raw):
        raise ValueError(
            "must be a three-letter currency code such as EUR, GBP or USD, or a sign such as €"
        )
    return raw


def _log_level(_name: str, raw: str) -> str:
    if raw.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return raw.upper()


#: the outputs of dbt/profiles.yml (the engines the dbt project builds on)
DBT_TARGETS = ("duckdb", "spark")


def _dbt_target(_name: str, raw: str) -> str:
    if raw.strip().lower() not in DBT_TARGETS:
        raise ValueError(f"must be one of {', '.join(DBT_TARGETS)} (dbt/profiles.yml's outputs)")
    return raw.strip().lower()


def _encoding(_name: str, raw: str) -> str:
    try:
        codecs.lookup(raw)
    except LookupError:
        raise ValueError("must be a character encoding such as utf-8, latin-1 or cp1252") from None
    return raw


def _path(_name: str, raw: str) -> Path:
    return Path(raw).expanduser().resolve()


POSTGRES_PREFIXES = ("postgresql://", "postgresql+", "postgres://")


def _warehouse(_name: str, raw: str) -> str:
    if "://" in raw and not raw.startswith(POSTGRES_PREFIXES):
        raise ValueError("must be a DuckDB file path or a postgresql:// URL")
    return raw if raw.startswith(POSTGRES_PREFIXES) else str(Path(raw).expanduser().resolve())


SMTP_SCHEMES = ("smtp", "smtps", "smtp+starttls")


def _smtp_url(_name: str, raw: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        port, parts = -1, None
    if parts is None or parts.scheme not in SMTP_SCHEMES or not parts.hostname or port == -1:
        raise ValueError(
            "must be a URL like smtp://[user:password@]host[:port] (or smtps://, smtp+starttls://)"
        )
    return raw


def _email(_name: str, raw: str) -> str:
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", raw.strip()):
        raise ValueError("must be an e-mail address such as kam-brief@example.com")
    return raw.strip()


# --------------------------------------------------------------------------- declaration


@dataclass(frozen=True)
class Setting:
    """One environment variable: its field in :class:`Settings`, default and meaning."""

    field: str
    env: str
    default: str | None  # the text read when the variable is unset; None: no default
    parse: Callable[[str, str], Any]
    meaning: str
    default_doc: str | None = None  # how the README shows a derived default


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "erp_url",
        "KAM_ERP_URL",
        None,
        _optional_text,
        "ERP source: SQLAlchemy URL (`postgresql://`, `sqlite:///`, `mysql+pymysql://`, ...) "
        "or a folder of `<table>.parquet` / `<table>.csv` files",
        "demo SQLite (in `kam demo`)",
    ),
    Setting(
        "crm_url",
        "KAM_CRM_URL",
        None,
        _optional_text,
        "CRM source, same forms. Unset: the pipeline runs orders-only, CRM-based signals are "
        "NULL (absent, not false)",
        "unset",
    ),
    Setting(
        "crm_removed",
        "KAM_CRM_REMOVED",
        "false",
        _yes_no,
        "`true`: the CRM is gone on purpose. Without it, a run with `KAM_CRM_URL` unset on a "
        "work DB built with a CRM is refused (it would remove every CRM row); with it the CRM "
        "rows are removed and kept in `audit.deleted_rows`",
    ),
    Setting(
        "data_dir",
        "KAM_DATA_DIR",
        "./data",
        _path,
        "working files: work DB (`work/kam_work.duckdb`), demo sources, run reports, Dagster home",
    ),
    Setting(
        "warehouse",
        "KAM_WAREHOUSE",
        None,  # derived from KAM_DATA_DIR
        _warehouse,
        "published warehouse: a DuckDB file path or a `postgresql://` URL",
        "`$KAM_DATA_DIR/warehouse/kam.duckdb`",
    ),
    Setting(
        "dagster_home",
        "DAGSTER_HOME",
        None,  # derived from KAM_DATA_DIR
        _path,
        "Dagster instance (run history, schedules); `kam` creates it with a `dagster.yaml`",
        "`$KAM_DATA_DIR/dagster_home`",
    ),
    Setting(
        "chunk_rows",
        "KAM_CHUNK_ROWS",
        "50000",
        _int_between(
            1000,
            5_000_000,
            "below 1,000 a batch's fixed cost dominates: 23k rows "
            "took over 18 minutes at 1; above 5M one batch's memory is unbounded",
        ),
        "rows per extraction batch (memory is bounded by this, not by table size); "
        "1,000 to 5,000,000",
    ),
    Setting(
        "clock_skew_minutes",
        "KAM_CLOCK_SKEW_MINUTES",
        "5",
        _int_at_least(0),
        "a watermark never goes beyond the run's clock (UTC) plus this many minutes: a row "
        "with a later `updated_at` is stored but does not move it (and is quarantined as "
        "`future_date` when dated after today)",
    ),
    Setting(
        "csv_encoding",
        "KAM_CSV_ENCODING",
        "utf-8",
        _encoding,
        "character encoding of CSV source files (`utf-8`, `latin-1`, `cp1252`, ...); a value "
        "that cannot be decoded is quarantined as `unreadable_value`",
    ),
    Setting(
        "delete_check_max_rows",
        "KAM_DELETE_CHECK_MAX_ROWS",
        "0",
        _int_at_least(0),
        "rows deleted at the source are found by comparing keys each run; a table with more "
        "source rows than this is compared once every 7 days instead (`0`: every table, "
        "every run)",
    ),
    Setting(
        "schedule_time",
        "KAM_SCHEDULE_TIME",
        "06:00",
        _hh_mm,
        "time of the daily run (HH:MM)",
    ),
    Setting(
        "schedule_timezone",
        "KAM_SCHEDULE_TIMEZONE",
        "UTC",
        _time_zone,
        'time zone of the schedule, and of the run\'s "today"',
    ),
    Setting(
        "partitions_start",
        "KAM_PARTITIONS_START",
        "2020-01-01",
        _iso_date,
        "first as-of date that can be run or backfilled; unset, a data dir takes the month "
        "of its first order after its first successful run (`sources.json`), so the UI's "
        "partitions begin with the data",
    ),
    Setting(
        "history_days",
        "KAM_HISTORY_DAYS",
        "730",
        _int_between(
            1,
            3660,
            "at most 10 years: the window is a DuckDB date series and is "
            "rebuilt from the order history",
        ),
        "days (1 to 3,660) of `client_status_history` reconstructed: the dates of the last "
        "this many days the history lacks (all on the first run, the missed days after a "
        "gap; a backfill's from its first date; from the date of an order changed, deleted "
        "or arriving late at the source) are rebuilt from the order history; older rows are "
        "kept",
    ),
    Setting(
        "duckdb_storage_version",
        "KAM_DUCKDB_STORAGE_VERSION",
        "v1.0.0",
        _storage_version,
        "storage version of the published DuckDB file, so BI tools embedding DuckDB 1.x can "
        "open it",
    ),
    Setting(
        "warehouse_retention",
        "KAM_WAREHOUSE_RETENTION",
        "7",
        _int_at_least(1),
        "published DuckDB versions kept in `warehouse/versions/`",
    ),
    Setting(
        "report_retention_days",
        "KAM_REPORT_RETENTION_DAYS",
        "30",
        _int_at_least(0),
        "validation report folders (`reports/<run_id>/`) older than this are removed after "
        "each successful publish; `0` keeps all",
    ),
    Setting(
        "bi_role",
        "KAM_BI_ROLE",
        "kam_bi",
        _role,
        "PostgreSQL read-only role (created NOLOGIN) granted `SELECT` on `marts` (only) at "
        "every publish",
    ),
    Setting(
        "audit_role",
        "KAM_AUDIT_ROLE",
        "kam_audit",
        _role,
        "PostgreSQL role (created NOLOGIN) granted `SELECT` on `audit` at every publish: "
        "quarantined and deleted source rows, as JSON; the BI role never reads `audit`",
    ),
    Setting(
        "audit_retention_days",
        "KAM_AUDIT_RETENTION_DAYS",
        "365",
        _int_at_least(0),
        "rows deleted at the source are kept (with their values) in `audit.deleted_rows` for "
        "this many days after the run that found them gone; `0` keeps them all. Quarantined "
        "rows stay in `audit.quarantine` as long as the source still has them",
    ),
    Setting(
        "pg_schema_prefix",
        "KAM_PG_SCHEMA_PREFIX",
        "",
        _schema_prefix,
        "PostgreSQL warehouse: prefix of the published schema names (`kam_` publishes "
        "`kam_marts` and `kam_audit`), for a database where `marts` or `audit` already "
        "belong to someone else (a publish refuses to replace a schema kam did not publish)",
        "empty (`marts`, `audit`)",
    ),
    Setting(
        "pg_lock_timeout_ms",
        "KAM_PG_LOCK_TIMEOUT_MS",
        "2000",
        _int_at_least(1),
        "lock timeout of the PostgreSQL schema swap",
    ),
    Setting(
        "pg_publish_retries",
        "KAM_PG_PUBLISH_RETRIES",
        "5",
        _int_at_least(0),
        "retries of the swap on a lock timeout",
    ),
    Setting(
        "quarantine_max_share",
        "KAM_QUARANTINE_MAX_SHARE",
        "0.01",
        _share,
        "a table with more quarantined rows than this share blocks the run",
    ),
    Setting(
        "row_drop_max_share",
        "KAM_ROW_DROP_MAX_SHARE",
        "0.2",
        _share,
        "a source table shrinking by more than this share since the last run blocks it",
    ),
    Setting(
        "max_line_amount",
        "KAM_MAX_LINE_AMOUNT",
        "1e12",
        _positive_number,
        "plausible magnitude of one amount: an order line whose quantity × unit_price, "
        "quantity × unit_cost or discount, or an invoice whose amount, is not finite or at "
        "least this large is quarantined; such a value in a mart blocks the publish",
    ),
    Setting(
        "revenue_band_days",
        "KAM_REVENUE_BAND_DAYS",
        "56",
        _int_at_least(7),
        "the as-of day's revenue must lie within median ± k·MAD of the same weekday in this "
        "many past days",
    ),
    Setting(
        "revenue_band_k",
        "KAM_REVENUE_BAND_K",
        "10",
        _positive_number,
        "the k of that band",
    ),
    Setting(
        "dbt_threads",
        "KAM_DBT_THREADS",
        "2",
        _int_at_least(1),
        "dbt threads",
    ),
    Setting(
        "dbt_target",
        "KAM_DBT_TARGET",
        "duckdb",
        _dbt_target,
        "the engine dbt builds the models on: an output of dbt/profiles.yml, `duckdb` or "
        "`spark` (passed to dbt as DBT_TARGET). `kam run` builds on DuckDB only (its checks and "
        "publish read the DuckDB work DB); `spark` serves `python -m pipelines.spark_build` "
        '(README "Running on Spark")',
    ),
    Setting(
        "duckdb_memory_limit",
        "KAM_DUCKDB_MEMORY_LIMIT",
        "1GB",
        _memory_size,
        "memory DuckDB may use in the dbt build (beyond it, it spills to disk next to the work "
        "DB); from the churn model on, half of it: the model's Python memory (~400 MB at "
        "20,000 clients) is outside DuckDB's limit and stays in the dbt process. 3GB took "
        "~22 % less dbt time for a 3.8 GB run (December 2026); without a limit DuckDB takes "
        "up to 80 % of RAM (15 GB seen)",
    ),
    Setting(
        "currency",
        "KAM_CURRENCY",
        None,
        _currency,
        "currency of the source's amounts (ISO code such as `GBP`, or a sign such as `€`), "
        "written after every amount in the marts' reason texts (`value 1,069,745.00 GBP`); "
        "unset: amounts without a currency",
        "unset",
    ),
    Setting(
        "log_level",
        "KAM_LOG_LEVEL",
        "INFO",
        _log_level,
        "console log level of `kam run` / `kam demo` (`DEBUG` shows every Dagster event)",
    ),
    Setting(
        "smtp_url",
        "KAM_SMTP_URL",
        None,
        _smtp_url,
        "e-mail the daily brief through this server (`smtp://user:password@host:587`, "
        "`smtps://`, `smtp+starttls://`); unset: no e-mail. A failed delivery is reported "
        "and retried by the next run; it never fails the run",
        "unset",
    ),
    Setting(
        "brief_sender",
        "KAM_BRIEF_SENDER",
        None,
        _email,
        "From address of the brief's e-mails (required with `KAM_SMTP_URL`)",
        "unset",
    ),
    Setting(
        "brief_recipients",
        "KAM_BRIEF_RECIPIENTS",
        None,
        _path,
        "CSV file `manager_id,email`: who gets which manager's brief (managers not listed get "
        "no e-mail)",
        "unset",
    ),
)

SETTINGS_BY_ENV: dict[str, Setting] = {s.env: s for s in SETTINGS}
#: settings whose value may be a URL with credentials: shown masked in every message
URL_SETTINGS = frozenset({"KAM_ERP_URL", "KAM_CRM_URL", "KAM_WAREHOUSE", "KAM_SMTP_URL"})


def _raw(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


@dataclass(frozen=True)
class Settings:
    """Resolved, validated settings. Build with :meth:`from_env`."""

    erp_url: str | None
    crm_url: str | None
    crm_removed: bool
    data_dir: Path
    warehouse: str
    dagster_home: Path
    chunk_rows: int
    clock_skew_minutes: int
    csv_encoding: str
    delete_check_max_rows: int
    schedule_time: str
    schedule_timezone: str
    partitions_start: date
    history_days: int
    duckdb_storage_version: str
    warehouse_retention: int
    report_retention_days: int
    bi_role: str
    audit_role: str
    audit_retention_days: int
    pg_schema_prefix: str
    pg_lock_timeout_ms: int
    pg_publish_retries: int
    quarantine_max_share: float
    row_drop_max_share: float
    max_line_amount: float
    revenue_band_days: int
    revenue_band_k: float
    dbt_threads: int
    dbt_target: str
    duckdb_memory_limit: str
    currency: str | None
    log_level: str
    smtp_url: str | None = None
    brief_sender: str | None = None
    brief_recipients: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; :class:`SettingsError` lists every bad one.
        Without ``environ``: the process environment and the URLs :func:`held_urls` took
        out of it."""
        environ = {**_HELD_URLS, **os.environ} if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for setting in SETTINGS:
            raw = _raw(environ, setting.env)
            if raw is None:
                raw = setting.default
            if raw is None:
                values[setting.field] = None
                continue
            try:
                values[setting.field] = setting.parse(setting.env, raw)
            except ValueError as exc:
                shown = mask_url(raw) if setting.env in URL_SETTINGS else raw
                problems.append(f"{setting.env}={shown!r} {_reason(setting.env, exc)}")
        if values.get("smtp_url") and not values.get("brief_sender"):
            problems.append("KAM_BRIEF_SENDER is required when KAM_SMTP_URL is set (From address)")
        if problems:
            raise SettingsError(problems)
        data_dir: Path = values["data_dir"]
        if values["warehouse"] is None:
            values["warehouse"] = str(data_dir / "warehouse" / "kam.duckdb")
        if values["dagster_home"] is None:
            values["dagster_home"] = data_dir / "dagster_home"
        return cls(**values)

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
    def briefs_dir(self) -> Path:
        """Daily briefs per manager (``<as_of>/<manager>.html``, ``index.html``), kept as
        long as the run reports (KAM_REPORT_RETENTION_DAYS)."""
        return self.data_dir / "briefs"

    @property
    def warehouse_is_postgres(self) -> bool:
        return self.warehouse.startswith(POSTGRES_PREFIXES)

    @property
    def has_crm(self) -> bool:
        return self.crm_url is not None

    def dbt_env(self) -> dict[str, str]:
        """The variables dbt's profiles.yml reads, from these settings."""
        return {
            "KAM_WORK_DB": str(self.work_db),
            "KAM_DBT_THREADS": str(self.dbt_threads),
            "KAM_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            "DBT_TARGET": self.dbt_target,
        }


#: URL settings taken out of os.environ by :func:`held_urls` (read by Settings.from_env)
_HELD_URLS: dict[str, str] = {}


@contextmanager
def held_urls() -> Iterator[None]:
    """Take the source and warehouse URLs (which may carry passwords) out of the process
    environment for the duration, so that no child process started meanwhile (dbt, its
    helpers, Dagster's log watchers) has them in /proc/<pid>/environ; this process still
    reads them through :meth:`Settings.from_env`. Restored afterwards."""
    taken = {name: os.environ.pop(name) for name in sorted(URL_SETTINGS) if name in os.environ}
    _HELD_URLS.update(taken)
    try:
        yield
    finally:
        for name, value in taken.items():
            _HELD_URLS.pop(name, None)
            os.environ.setdefault(name, value)


def hold_urls_for_good() -> list[str]:
    """Take the source and warehouse URLs out of the process environment for the rest of
    the process (:func:`held_urls` without the restore): for a process that runs one
    pipeline run and ends, such as the run worker a Dagster code server starts for a run
    launched from the UI or by the daemon. Its child processes (dbt, Dagster's log
    watchers) then get none of them; it reads them through :meth:`Settings.from_env`.
    (Its own /proc/<pid>/environ keeps the environment it was started with.) The names
    taken."""
    taken = {name: os.environ.pop(name) for name in sorted(URL_SETTINGS) if name in os.environ}
    _HELD_URLS.update(taken)
    return sorted(taken)


def declared_default(field: str) -> Any:
    """The parsed default of a setting, for code that needs the same value outside a run
    (e.g. a function's default argument): the declaration stays the only place it is written."""
    setting = next(s for s in SETTINGS if s.field == field)
    return None if setting.default is None else setting.parse(setting.env, setting.default)


def _reason(env: str, exc: ValueError) -> str:
    """The parser's message, without repeating the variable name it may already carry."""
    text = str(exc)
    return text[len(env) :].lstrip(" :") if text.startswith(env) else text


def settings_table() -> str:
    """The README's configuration table (Markdown), generated from :data:`SETTINGS`."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for setting in SETTINGS:
        default = setting.default_doc or f"`{setting.default}`"
        lines.append(f"| `{setting.env}` | {default} | {setting.meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_table())
