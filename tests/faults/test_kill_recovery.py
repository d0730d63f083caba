"""`kam run` killed with SIGKILL during extraction, the dbt build and the publish, for a
DuckDB file and for a PostgreSQL warehouse.

One chain per target, in its own data dir (the work DB starts empty) and DAGSTER_HOME;
both chains and the reference run go on at the same time (subprocesses):

    seed the warehouse with an earlier good publish (run id ``seed-...``)
    kill during extract_sources   -> warehouse still the seed, readable
    kill during dbt_build         -> idem
    kill during the publish       -> idem (DuckDB: the temporary file appeared;
                                     PostgreSQL: the publishing session has written)
    re-run                        -> succeeds; its marts equal those of the reference
                                     (uninterrupted) run on the same sources

The sources are PostgreSQL databases read by a login role with a password: no line of any
run's output may contain it. After the PostgreSQL chain, the BI role (KAM_BI_ROLE) can read
the published marts and cannot write them.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
from faults_support import (
    AS_OF,
    AS_OF_DATE,
    KamRun,
    duckdb_marts,
    kam_env,
    make_seed_work_db,
    pg_connect,
    pg_marts,
    pg_schemas,
    published_counts_consistent,
    sha256,
)

from pipelines.process_guard import descendants, process_cmdline

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PHASES = ("extract", "dbt", "publish")
TARGETS = ("duckdb", "postgres")
PHASE_TIMEOUT = 600.0  # seconds to reach a phase (a whole run takes ~1-2 min here)
DBT_MODELS_BEFORE_KILL = 12  # dbt materializations seen before killing the build


@dataclass
class Step:
    name: str
    run: KamRun | None = None
    hit: bool = False  # the kill landed in the intended phase
    note: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class Chain:
    target: str
    warehouse: str  # file path or URL
    database: str | None = None
    bi_role: str | None = None
    seed_run_id: str = ""
    seed_sha: str = ""
    steps: dict[str, Step] = field(default_factory=dict)
    rerun_snapshot: object = None
    dagster_home: Path | None = None
    error: str = ""
    seconds: float = 0.0

    def runs(self) -> list[KamRun]:
        return [s.run for s in self.steps.values() if s.run is not None]


# --------------------------------------------------------------------------- the chains


def _seed(chain: Chain, seed_db: Path, pg_resources) -> None:
    """A good earlier publish in the warehouse (the pipeline's own publish functions)."""
    from pipelines.publish.duckdb_file import publish_duckdb
    from pipelines.publish.postgres import publish_postgres

    chain.seed_run_id = f"seed-{chain.target}"
    if chain.target == "duckdb":
        publish_duckdb(seed_db, Path(chain.warehouse), chain.seed_run_id, AS_OF_DATE)
        chain.seed_sha = sha256(Path(chain.warehouse))
    else:
        seed_role = pg_resources.role_name("kam_bi_seed")
        publish_postgres(seed_db, chain.warehouse, chain.seed_run_id, AS_OF_DATE, bi_role=seed_role)


def _check_last_good(chain: Chain, step: Step, admin_url: str) -> None:
    """The warehouse still holds the seed publish, complete and readable."""
    try:
        if chain.target == "duckdb":
            path = Path(chain.warehouse)
            if sha256(path) != chain.seed_sha:
                step.problems.append("published DuckDB file changed (sha256 differs)")
            snap = duckdb_marts(path)
        else:
            _wait_publish_sessions_gone(admin_url, chain.database)
            snap = pg_marts(chain.warehouse)
            leftovers = [s for s in pg_schemas(chain.warehouse) if "__new_" in s]
            if leftovers:
                step.problems.append(f"half-built schemas visible after the kill: {leftovers}")
        run_id = snap.info.get("run_id")
        if run_id != chain.seed_run_id:
            step.problems.append(f"publish_info.run_id is {run_id!r}, expected the seed")
        step.problems += published_counts_consistent(snap)
    except Exception as exc:  # unreadable warehouse
        step.problems.append(f"warehouse unreadable after the kill: {type(exc).__name__}: {exc}")


def _wait_publish_sessions_gone(admin_url: str, database: str, timeout: float = 15) -> None:
    conn = pg_connect(admin_url)
    conn.autocommit = True
    try:
        deadline = time.monotonic() + timeout
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute(
                    "select count(*) from pg_stat_activity "
                    "where datname = %s and application_name = 'kam-publish'",
                    (database,),
                )
                if cur.fetchone()[0] == 0:
                    return
                time.sleep(0.05)
    finally:
        conn.close()


def _publish_started(chain: Chain, admin_url: str):
    """A condition: true once the publish has begun writing its new version."""
    if chain.target == "duckdb":
        folder = Path(chain.warehouse).parent
        before = set(os.listdir(folder))

        def new_file_beside_warehouse() -> bool:
            # the new version is built as a temporary file next to the published one
            return bool(set(os.listdir(folder)) - before)

        return new_file_beside_warehouse, None
    conn = pg_connect(admin_url)
    conn.autocommit = True
    cur = conn.cursor()

    def load_transaction_open() -> bool:
        # the publish load runs in one transaction: it has an xid once it has written
        cur.execute(
            "select count(*) from pg_stat_activity where datname = %s "
            "and application_name = 'kam-publish' and backend_xid is not null",
            (chain.database,),
        )
        return cur.fetchone()[0] > 0

    return load_transaction_open, conn


def _kill_in_phase(
    chain: Chain, phase: str, env: dict, work_db: Path, admin_url: str, logs: Path
) -> Step:
    step = Step(f"kill-{phase}")
    label = f"{chain.target}-{step.name}"
    run = KamRun(env, label=label, log_path=logs / f"{label}.log")
    step.run = run
    conn = None
    try:
        if phase == "extract":
            step_key = "extract_sources"
            wal = Path(f"{work_db}.wal")
            ready = run.wait_for(lambda: run.step_started(step_key), PHASE_TIMEOUT)
            ready = ready and run.wait_for(wal.exists, PHASE_TIMEOUT, poll=0.005)
            step.note = "raw layer being written (work DB .wal present)"
        elif phase == "dbt":
            step_key = "dbt_build"

            def dbt_midway() -> bool:
                built = run.events.count("ASSET_MATERIALIZATION", step_key)
                dbt = [p for p in descendants(run.proc.pid) if "dbt build" in process_cmdline(p)]
                return built >= DBT_MODELS_BEFORE_KILL and bool(dbt)

            ready = run.wait_for(dbt_midway, PHASE_TIMEOUT)
            step.note = f">= {DBT_MODELS_BEFORE_KILL} dbt models built, dbt process alive"
        else:
            step_key = "warehouse"
            ready = run.wait_for(lambda: run.step_started(step_key), PHASE_TIMEOUT)
            condition, conn = _publish_started(chain, admin_url)
            ready = ready and run.wait_for(condition, PHASE_TIMEOUT, poll=0.002)
            step.note = (
                "new version file appearing beside the warehouse"
                if chain.target == "duckdb"
                else "publishing transaction has written"
            )
        finished_before = run.step_finished(step_key) or run.proc.poll() is not None
        run.kill()
        step.hit = bool(ready) and not finished_before
        if not step.hit:
            step.problems.append(
                f"the kill missed the {phase} phase (ready={ready}, step finished "
                f"before={finished_before}):\n{run.tail(25)}"
            )
        if run.survivors:
            step.problems.append(f"processes survived the group kill: {run.survivors}")
    finally:
        if conn is not None:
            conn.close()
    _check_last_good(chain, step, admin_url)
    return step


def _run_chain(chain: Chain, base: Path, pg_sources, dbt_target, admin_url) -> None:
    started = time.monotonic()
    try:
        data_dir = base / "data"
        dbt_copy = base / "dbt_target"  # each chain its own dbt target folder
        shutil.copytree(dbt_target, dbt_copy)
        env = kam_env(
            data_dir=data_dir,
            warehouse=chain.warehouse,
            erp_url=pg_sources.erp_url,
            crm_url=pg_sources.crm_url,
            dagster_home=base / "dagster_home",
            dbt_target=dbt_copy,
            bi_role=chain.bi_role,
        )
        chain.dagster_home = base / "dagster_home"
        work_db = data_dir / "work" / "kam_work.duckdb"
        for phase in PHASES:
            chain.steps[phase] = _kill_in_phase(chain, phase, env, work_db, admin_url, base)
        label = f"{chain.target}-rerun"
        rerun = Step("rerun", run=KamRun(env, label=label, log_path=base / f"{label}.log"))
        chain.steps["rerun"] = rerun
        rc = rerun.run.wait(timeout=900)
        rerun.hit = rc == 0
        if rc != 0:
            rerun.problems.append(f"re-run failed (rc {rc}):\n{rerun.run.tail()}")
            return
        if chain.target == "duckdb":
            chain.rerun_snapshot = duckdb_marts(Path(chain.warehouse))
        else:
            chain.rerun_snapshot = pg_marts(chain.warehouse)
    except Exception:
        chain.error = traceback.format_exc()
    finally:
        chain.seconds = time.monotonic() - started


@pytest.fixture(scope="module")
def chains(
    reference_launch, pg_sources, pg_resources, fault_dbt_target, tmp_path_factory
) -> dict[str, Chain]:
    """Both chains, while the reference run goes on (it is awaited by the tests)."""
    base = tmp_path_factory.mktemp("faults_chains")
    seed_db = make_seed_work_db(base / "seed" / "kam_work.duckdb")
    database = pg_resources.create_database("kam_faults_wh")
    out = {
        "duckdb": Chain("duckdb", str(base / "duckdb" / "warehouse" / "kam.duckdb")),
        "postgres": Chain(
            "postgres",
            pg_resources.url(database),
            database=database,
            bi_role=pg_resources.role_name("kam_bi_faults"),
        ),
    }
    for chain in out.values():
        _seed(chain, seed_db, pg_resources)
    threads = [
        threading.Thread(
            target=_run_chain,
            args=(
                chain,
                base / name,
                pg_sources,
                fault_dbt_target,
                pg_resources.admin_url,
            ),
        )
        for name, chain in out.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for chain in out.values():
        timings = {k: round(s.run.seconds, 1) for k, s in chain.steps.items() if s.run}
        print(f"chain {chain.target}: {chain.seconds:.1f}s {timings}")
    return out


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("phase", PHASES)
def test_kill_leaves_last_good_version(chains: dict[str, Chain], phase: str, target: str) -> None:
    chain = chains[target]
    assert not chain.error, chain.error
    step = chain.steps[phase]
    assert step.run is not None and step.run.killed_at is not None
    assert step.run.returncode != 0  # really killed, not finished
    assert step.hit, step.problems
    assert not step.problems, "\n".join(step.problems)


@pytest.mark.parametrize("target", TARGETS)
def test_rerun_after_kills_equals_uninterrupted_run(
    chains: dict[str, Chain], reference, target: str
) -> None:
    chain = chains[target]
    assert not chain.error, chain.error
    rerun = chain.steps["rerun"]
    assert rerun.hit, rerun.problems
    snap = chain.rerun_snapshot
    assert snap.info.get("run_id") == rerun.run.run_id()  # the new version is visible
    assert str(snap.info.get("as_of_date")) == AS_OF
    expected = reference.marts()
    assert expected.tables["dim_clients"][1], "the reference has no clients"
    differences = expected.differences(snap)
    assert not differences, "\n".join(differences)
    assert not published_counts_consistent(snap)
    # the killed runs do not stay "started" in Dagster: the next kam run marked them failed
    statuses = {phase: chain.steps[phase].run.events.status() for phase in PHASES}
    assert statuses == dict.fromkeys(PHASES, "FAILURE"), statuses


def test_source_password_never_in_output(chains: dict[str, Chain], reference, pg_sources) -> None:
    runs = [reference.run] + [run for chain in chains.values() for run in chain.runs()]
    assert len(runs) == 1 + 4 * len(TARGETS)
    assert all(run.snapshot() for run in runs)
    # the runs did use the authenticated sources (masked) ...
    assert any(f"{pg_sources.role}:***@" in run.output for run in runs)
    # ... and no line of any of them shows the password
    leaks = [
        f"{run.label}: {line[:200]}"
        for run in runs
        for line in run.snapshot()
        if pg_sources.password in line
    ]
    assert not leaks, "\n".join(leaks[:10])
    # nor does the Dagster run history (event log, run storage)
    secret = pg_sources.password.encode()
    homes = [reference.dagster_home] + [c.dagster_home for c in chains.values()]
    for home in homes:
        assert home is not None and home.is_dir()
        for path in Path(home).rglob("*"):
            if path.is_file():
                assert secret not in path.read_bytes(), f"password found in {path}"


def test_bi_role_reads_but_cannot_write_after_pipeline_publish(
    chains: dict[str, Chain],
) -> None:
    chain = chains["postgres"]
    assert not chain.error, chain.error
    assert chain.steps["rerun"].hit, chain.steps["rerun"].problems
    role = chain.bi_role
    conn = pg_connect(chain.warehouse)
    try:
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_roles where rolname = %s", (role,))
            assert cur.fetchone() is not None, f"KAM_BI_ROLE={role} was not created by the publish"
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'set role "{role}"')
            cur.execute("select count(*) from marts.dim_clients")
            assert cur.fetchone()[0] > 0
            cur.execute("select run_id from marts.publish_info")
            assert cur.fetchone()[0] == chain.steps["rerun"].run.run_id()
            attempts = {
                "insert": "insert into marts.dim_clients (client_id) values ('x-intruder')",
                "update": "update marts.dim_clients set client_name = 'changed'",
                "delete": "delete from marts.dim_clients",
                "create table": "create table marts.intruder (x int)",
                "drop table": "drop table marts.fct_orders",
                "create schema": "create schema intruder",
            }
            refused = {}
            for what, statement in attempts.items():
                try:
                    cur.execute(statement)
                except psycopg2.errors.InsufficientPrivilege:
                    refused[what] = True
                else:
                    refused[what] = False
            assert refused == dict.fromkeys(attempts, True)
            cur.execute("reset role")
            cur.execute("select count(*) from marts.dim_clients where client_name = 'changed'")
            assert cur.fetchone()[0] == 0
    finally:
        conn.close()
