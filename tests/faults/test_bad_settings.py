"""`kam run` against a source that is down, and with a BI role name that tries injection.

* ERP at a closed port with a password in its URL: the run fails within a bounded time,
  the output names the ERP source and shows the retries, the password never appears
  (output or Dagster run history), and nothing is published.
* KAM_BI_ROLE='kam_bi; drop schema marts' with a PostgreSQL warehouse: a clear error that
  names the setting, raised before any SQL (the work DB is not even created), and the
  published warehouse is left exactly as it was.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from faults_support import (
    AS_OF_DATE,
    KamRun,
    kam_env,
    make_seed_work_db,
    pg_connect,
    pg_marts,
    pg_schemas,
)

pytestmark = [pytest.mark.slow]

DOWN_PASSWORD = "secret-pw"
DOWN_ERP_URL = f"postgresql://kam:{DOWN_PASSWORD}@127.0.0.1:1/erp"
BOUND_SECONDS = 150  # startup (~20-40 s on a busy 2-core machine) + retries with backoff
INJECTION = "kam_bi; drop schema marts"


def test_source_down_fails_fast_names_erp_shows_retries_masks_password(
    fault_dbt_target: Path, tmp_path: Path, reference_launch
) -> None:
    # (reference_launch: the reference run of the session starts now and overlaps)
    warehouse = tmp_path / "warehouse" / "kam.duckdb"
    env = kam_env(
        data_dir=tmp_path / "data",
        warehouse=warehouse,
        erp_url=DOWN_ERP_URL,
        crm_url=None,
        dagster_home=tmp_path / "dagster_home",
        dbt_target=fault_dbt_target,
    )
    started = time.monotonic()
    run = KamRun(env, label="erp down", log_path=tmp_path / "run.log")
    rc = run.wait(timeout=600)
    seconds = time.monotonic() - started
    out = run.output

    assert rc != 0, run.tail()
    assert seconds < BOUND_SECONDS, f"took {seconds:.0f}s"
    # names the ERP source (its masked URL) as the cause
    assert re.search(r"(?i)\berp\b[^\n]*127\.0\.0\.1:1/erp", out), run.tail()
    assert "kam:***@127.0.0.1:1/erp" in out
    # shows that it retried: per-attempt lines, or "after N attempts" with N >= 2
    attempt_lines = set(re.findall(r"(?i)attempt\s*(\d+)\s*/\s*\d+", out))
    totals = [int(n) for n in re.findall(r"(?i)after (\d+) attempts", out)]
    assert len(attempt_lines) >= 2 or any(n >= 2 for n in totals), run.tail()
    # the password never shows, anywhere
    leaks = [line for line in run.snapshot() if DOWN_PASSWORD in line]
    assert not leaks, leaks[:5]
    for path in (tmp_path / "dagster_home").rglob("*"):
        if path.is_file():
            assert DOWN_PASSWORD.encode() not in path.read_bytes(), f"password in {path}"
    # nothing was published
    assert not warehouse.exists()


def test_bi_role_injection_is_refused_before_any_sql(
    reference_launch, pg_sources, pg_url: str, pg_resources, fault_dbt_target: Path, tmp_path: Path
) -> None:
    from pipelines.publish.postgres import publish_postgres

    seed_role = pg_resources.role_name("kam_bi_seed")
    seed_db = make_seed_work_db(tmp_path / "seed" / "kam_work.duckdb")
    publish_postgres(seed_db, pg_url, "seed-injection", AS_OF_DATE, bi_role=seed_role)
    schemas_before = pg_schemas(pg_url)
    before = pg_marts(pg_url)

    data_dir = tmp_path / "data"
    env = kam_env(
        data_dir=data_dir,
        warehouse=pg_url,
        erp_url=pg_sources.erp_url,
        crm_url=pg_sources.crm_url,
        dagster_home=tmp_path / "dagster_home",
        dbt_target=fault_dbt_target,
        bi_role=INJECTION,
    )
    run = KamRun(env, label="bi role injection", log_path=tmp_path / "run.log")
    rc = run.wait(timeout=900)
    out = run.output

    assert rc != 0, f"kam run accepted KAM_BI_ROLE={INJECTION!r}:\n{run.tail(15)}"
    # a clear error: names the setting and shows the rejected value
    assert re.search(r"(?i)bi_role", out), run.tail()
    assert INJECTION in out or repr(INJECTION) in out, run.tail()
    # refused before any SQL: not even the work DB was created
    assert not (data_dir / "work" / "kam_work.duckdb").exists(), (
        "the run did SQL work before refusing the BI role name"
    )
    # the warehouse is exactly as it was
    assert pg_schemas(pg_url) == schemas_before
    after = pg_marts(pg_url)
    assert after.info["run_id"] == "seed-injection"
    assert not before.differences(after)
    conn = pg_connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("select count(*) from pg_roles where rolname = %s", (INJECTION,))
            assert cur.fetchone()[0] == 0
    finally:
        conn.close()
