"""What `kam run` (and `kam backfill`) checks before any Dagster run is recorded: the
settings, the as-of date(s), that the warehouse and data folders can be written and that the
warehouse is kam's to replace. Each problem names the setting (or the argument)."""

from __future__ import annotations

import logging
import sys
import tempfile
from datetime import date
from pathlib import Path

from pipelines.run_params import RunParameters, as_of_problem
from pipelines.secrets import mask_url
from pipelines.settings import Settings, SettingsError


def load_settings() -> tuple[Settings | None, list[str]]:
    """The settings, or the list of invalid ones (each naming its variable)."""
    try:
        return Settings.from_env(), []
    except SettingsError as exc:
        return None, list(exc.problems)


def _writable_folder_problem(folder: Path, what: str) -> str | None:
    """Whether ``folder`` exists or can be created and a file written in it. Creates
    nothing: a missing folder is judged by its nearest existing parent (creating a folder
    needs the same write access as a file), so a refused `kam check` / `kam run` leaves no
    empty folder behind; the run creates its folders when it writes to them."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".kam-preflight-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"{what}: cannot write to the folder {folder} ({reason})"
    return None


def storage_problems(settings: Settings) -> list[str]:
    """The folders the run writes, checked by writing to them (root ignores modes)."""
    problems = []
    if not settings.warehouse_is_postgres:
        folder = Path(settings.warehouse).parent
        shown = f"KAM_WAREHOUSE={mask_url(settings.warehouse)}"
        if problem := _writable_folder_problem(folder, shown):
            problems.append(problem)
    if problem := _writable_folder_problem(settings.data_dir, f"KAM_DATA_DIR={settings.data_dir}"):
        problems.append(problem)
    return problems


def warehouse_problems(settings: Settings) -> list[str]:
    """The warehouse is kam's to replace: never a folder, the work DB, a foreign file or a
    foreign PostgreSQL schema (see pipelines.publish.ownership). Connects to PostgreSQL."""
    from pipelines.publish.ownership import duckdb_warehouse_problem

    if not settings.warehouse_is_postgres:
        problem = duckdb_warehouse_problem(Path(settings.warehouse), settings.work_db)
        return [problem] if problem else []
    from pipelines.publish.ownership import foreign_pg_schemas
    from pipelines.publish.pg import connect_warehouse
    from pipelines.publish.result import PublishError

    prefix = settings.pg_schema_prefix
    targets = [f"{prefix}{schema}" for schema in ("marts", "audit")]
    try:
        conn = connect_warehouse(settings.warehouse)
    except PublishError as exc:
        return [f"KAM_WAREHOUSE: {exc}"]
    try:
        with conn.cursor() as cur:
            return [
                f"KAM_WAREHOUSE={mask_url(settings.warehouse)}: {problem}"
                for problem in foreign_pg_schemas(cur, targets, targets[0])
            ]
    finally:
        conn.close()


def crm_gone_problem(settings: Settings) -> str | None:
    """KAM_CRM_URL unset on a work DB built with a CRM (every CRM row would be removed),
    unless KAM_CRM_REMOVED says it is on purpose. Read-only; a busy work DB is not judged
    here (the extraction refuses the same way)."""
    if settings.crm_url or settings.crm_removed or not settings.work_db.is_file():
        return None
    import duckdb

    from pipelines.extract.raw_loader import SourceRemovedError, check_not_gone

    try:
        con = duckdb.connect(str(settings.work_db), read_only=True)
    except duckdb.Error:
        return None
    try:
        check_not_gone(con, "crm", removed=False)
    except SourceRemovedError as exc:
        return f"KAM_CRM_URL: {exc}"
    except duckdb.Error:  # a work DB without raw_meta yet
        return None
    finally:
        con.close()
    return None


def crm_gone_problems(settings: Settings) -> list[str]:
    problem = crm_gone_problem(settings)
    return [problem] if problem else []


def published_as_of(settings: Settings) -> tuple[date, str] | None:
    """(as_of_date, run_id) the warehouse holds, or None (nothing published, unreadable)."""
    from pipelines.publish.publish_info import INFO_SCHEMA, read_published

    if not settings.warehouse_is_postgres:
        import duckdb

        path = Path(settings.warehouse)
        if not path.is_file():
            return None
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            return None
        try:
            return read_published(con.execute, con.fetchall, INFO_SCHEMA)
        finally:
            con.close()
    from pipelines.publish.pg import connect_warehouse
    from pipelines.publish.result import PublishError

    try:
        conn = connect_warehouse(settings.warehouse)
    except PublishError:
        return None  # warehouse_problems says why
    try:
        with conn.cursor() as cur:
            return read_published(
                cur.execute, cur.fetchall, f'"{settings.pg_schema_prefix}{INFO_SCHEMA}"'
            )
    finally:
        conn.close()


def older_as_of_problem(settings: Settings, params: RunParameters, argument: str) -> str | None:
    """A run for an as-of date older than the one the warehouse holds would replace newer
    marts by older ones: refused unless asked for (--allow-older)."""
    published = published_as_of(settings)
    if published is None or params.as_of >= published[0]:
        return None
    day, run_id = published
    return (
        f"{argument} {params.as_of} is older than the as-of date the warehouse holds ({day}, "
        f"run {run_id}): publishing it would replace newer marts by older ones. Run {day} "
        f"or later, or pass --allow-older to publish {params.as_of} on purpose (nothing "
        f"dated after it is published)"
    )


def _show_source_warnings() -> None:
    """Connection retries (logged by pipelines.extract) reach the operator's console."""
    logger = logging.getLogger("pipelines")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("kam: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def source_problems(settings: Settings) -> list[str]:
    """Each configured source reachable and within the contract (the same check the
    extraction starts with, done before a run is recorded). Messages are masked."""
    from pipelines.extract.base import ContractError, SourceUnavailableError
    from pipelines.extract.connect import open_source

    _show_source_warnings()
    problems: list[str] = []
    for system, url, env in (
        ("erp", settings.erp_url, "KAM_ERP_URL"),
        ("crm", settings.crm_url, "KAM_CRM_URL"),
    ):
        if not url:
            continue
        try:
            source = open_source(system, url)
        except (SourceUnavailableError, ValueError) as exc:
            problems.append(f"{env}: {exc}")
            continue
        try:
            source.check_contract()
        except ContractError as exc:
            problems.extend(f"{env}: {problem}" for problem in exc.problems)
        finally:
            source.close()
    return problems


def run_problems(
    settings: Settings,
    params: RunParameters,
    *,
    check_sources: bool = True,
    allow_older: bool = False,
) -> list[str]:
    """Everything that would stop a run of ``params`` before its first step: settings
    that contradict each other, the as-of date (both ends of a backfill's range; older
    than the published one only with ``allow_older``), the folders it writes, the
    sources."""
    problems = []
    if not settings.erp_url:
        problems.append("KAM_ERP_URL is not set (the ERP source is required)")
    if params.rebuild_from is None:
        if problem := as_of_problem(params.as_of, settings, params.today):
            problems.append(problem)
    else:  # a backfill of rebuild_from..as_of (kam backfill --from --to): both ends
        for argument, day in (("--from", params.rebuild_from), ("--to", params.as_of)):
            if problem := as_of_problem(day, settings, params.today):
                problems.append(f"{argument} {day}: {problem}")
    if not problems:  # only touch the disk and the network for a run that could start
        problems.extend(storage_problems(settings))
    if not problems and check_sources:
        problems.extend(source_problems(settings))
    if not problems:  # the warehouse after the sources: a source problem is named first
        problems.extend(warehouse_problems(settings))
    if not problems and (problem := crm_gone_problem(settings)):
        problems.append(problem)
    if not problems and not allow_older:
        argument = "--as-of" if params.rebuild_from is None else "--to"
        if problem := older_as_of_problem(settings, params, argument):
            problems.append(problem)
    return problems
