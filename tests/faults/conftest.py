"""Fixtures of the fault tests: dbt manifest, PostgreSQL sources with a password, a
reference run of `kam run` on them, and tracked PostgreSQL databases and roles.

Everything the fixtures create on the PostgreSQL server (databases, roles) is dropped at
the end of the session; roles are cluster-wide, so their names are random.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from faults_support import AS_OF, KamRun, duckdb_marts, kam_env, pg_connect

SEED = 23
CLIENTS = 120
YEARS = 2


@pytest.fixture(scope="session")
def fault_dbt_target(dbt_target: Path) -> Path:
    """The session's dbt target folder (manifest prepared once, see tests/conftest.py)."""
    return dbt_target


class PgResources:
    """Databases and roles created for the fault tests, dropped at session end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.databases: list[str] = []
        self.roles: list[str] = []

    def _admin(self):
        conn = pg_connect(self.admin_url)
        conn.autocommit = True
        return conn

    def url(self, database: str, user: str | None = None, password: str | None = None) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url).set(database=database, drivername="postgresql+psycopg2")
        if user is not None:
            url = url.set(username=user, password=password)
        return url.render_as_string(hide_password=False)

    def create_database(self, prefix: str = "kam_faults") -> str:
        name = f"{prefix}_{secrets.token_hex(6)}"
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'create database "{name}"')
        finally:
            conn.close()
        self.databases.append(name)
        return name

    def role_name(self, prefix: str) -> str:
        name = f"{prefix}_{secrets.token_hex(5)}"
        self.roles.append(name)  # tracked even if only a publish creates it
        return name

    def create_login_role(self, prefix: str) -> tuple[str, str]:
        name = self.role_name(prefix)
        password = secrets.token_hex(12)
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"create role \"{name}\" login password '{password}'")
        finally:
            conn.close()
        return name, password

    def execute(self, database: str, statement: str) -> None:
        conn = pg_connect(self.url(database))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def drop_database(self, name: str) -> None:
        from pipelines.publish import pg

        pg.drop_database(self.admin_url, name)
        if name in self.databases:
            self.databases.remove(name)

    def close(self) -> None:
        for name in list(self.databases):
            self.drop_database(name)
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                for role in self.roles:
                    # privileges lived in databases dropped above (or in pg_url databases,
                    # dropped by their fixture): nothing is left to revoke
                    cur.execute(f'drop role if exists "{role}"')
        finally:
            conn.close()


@pytest.fixture(scope="session")
def pg_resources(postgres_admin_url: str) -> Iterator[PgResources]:
    resources = PgResources(postgres_admin_url)
    try:
        yield resources
    finally:
        resources.close()


@dataclass(frozen=True)
class PgSources:
    erp_url: str  # with the login role's password
    crm_url: str
    password: str
    role: str


@pytest.fixture(scope="session")
def pg_sources(pg_resources: PgResources, tmp_path_factory: pytest.TempPathFactory) -> PgSources:
    """The demo ERP and CRM in two PostgreSQL databases, read by a login role with a password."""
    from pipelines.generator import generate_demo

    erp_db = pg_resources.create_database("kam_faults_erp")
    crm_db = pg_resources.create_database("kam_faults_crm")
    generate_demo(
        tmp_path_factory.mktemp("faults_demo"),
        clients=CLIENTS,
        years=YEARS,
        seed=SEED,
        end_date=date.fromisoformat(AS_OF),
        erp_url=pg_resources.url(erp_db),
        crm_url=pg_resources.url(crm_db),
    )
    role, password = pg_resources.create_login_role("kam_src")
    for database in (erp_db, crm_db):
        pg_resources.execute(database, f'grant select on all tables in schema public to "{role}"')
    return PgSources(
        erp_url=pg_resources.url(erp_db, role, password),
        crm_url=pg_resources.url(crm_db, role, password),
        password=password,
        role=role,
    )


@dataclass
class Reference:
    """An uninterrupted `kam run` on the PostgreSQL sources, published to a DuckDB file."""

    data_dir: Path
    work_db: Path
    warehouse: Path
    run: KamRun
    run_id: str
    dagster_home: Path

    def marts(self):
        return duckdb_marts(self.warehouse)


@dataclass
class ReferenceLaunch:
    base: Path
    run: KamRun


@pytest.fixture(scope="session")
def reference_launch(
    pg_sources: PgSources, fault_dbt_target: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReferenceLaunch]:
    """The reference run, started (not awaited): other runs may go on meanwhile."""
    base = tmp_path_factory.mktemp("faults_reference")
    env = kam_env(
        data_dir=base / "data",
        warehouse=base / "warehouse" / "kam.duckdb",
        erp_url=pg_sources.erp_url,
        crm_url=pg_sources.crm_url,
        dagster_home=base / "dagster_home",
        dbt_target=fault_dbt_target,
    )
    launch = ReferenceLaunch(base, KamRun(env, label="reference", log_path=base / "run.log"))
    yield launch
    if launch.run.proc.poll() is None:  # session ended early: do not leave it running
        launch.run.kill()


@pytest.fixture(scope="session")
def reference(reference_launch: ReferenceLaunch) -> Reference:
    base, run = reference_launch.base, reference_launch.run
    rc = run.wait(timeout=900)
    assert rc == 0, f"reference run failed (rc {rc}):\n{run.tail()}"
    run_id = run.run_id()
    assert run_id, run.tail()
    print(f"reference run: {run.seconds:.1f}s")
    return Reference(
        data_dir=base / "data",
        work_db=base / "data" / "work" / "kam_work.duckdb",
        warehouse=base / "warehouse" / "kam.duckdb",
        run=run,
        run_id=run_id,
        dagster_home=base / "dagster_home",
    )
