"""Weak points: child processes had the source URLs (passwords) in their environment, and
``kam run --as-of 2026-09-15`` after 09-30 published ``publish_info`` 09-15
with history rows dated 09-16..09-30 and transitions after D.

The first run's descendants (dbt, its watchdog) are watched: none has KAM_ERP_URL,
KAM_CRM_URL or KAM_WAREHOUSE. Then the older date is refused (exit 2, naming both dates
and --allow-older) and the warehouse is untouched; with ``--allow-older`` it is published
and nothing dated after D is in it. Real `kam run`s on a small generated demo (SQLite,
60 clients, 2 years).
"""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest
from faults_support import KAM, REPO, kam_env, sha256

from pipelines.process_guard import descendants, process_cmdline, process_environ

LATER, OLDER = "2026-09-30", "2026-09-15"


@pytest.fixture(scope="module")
def demo_erp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.generator import generate_demo

    out = tmp_path_factory.mktemp("older_demo")
    generate_demo(out, clients=60, years=2, seed=13, end_date=date(2026, 9, 30))
    return out / "erp.sqlite"


def _run_watching_children(
    env: dict[str, str], *args: str
) -> tuple[int, str, dict[int, tuple[str, list[str]]]]:
    """`kam run` whose descendants' environments are read while it runs: (exit code,
    output, pid -> (command line, the KAM_* variables it had))."""
    proc = subprocess.Popen(
        [str(KAM), "run", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: dict[int, tuple[str, list[str]]] = {}
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline:
        for pid in descendants(proc.pid):
            if pid in seen:
                continue
            environ = process_environ(pid)
            if not environ:
                continue  # gone meanwhile
            names = sorted(e.split(b"=", 1)[0].decode() for e in environ if e.startswith(b"KAM_"))
            seen[pid] = (process_cmdline(pid), names)
        time.sleep(0.05)
    rc = proc.wait(timeout=60)
    reader.join(timeout=10)
    return rc, "".join(output), seen


def _kam_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KAM), "run", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=900
    )


def test_older_as_of_is_refused_unless_allowed_and_then_cut_at_d(
    demo_erp: Path, fault_dbt_target: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse" / "kam.duckdb"
    env = kam_env(
        data_dir=tmp_path / "data",
        warehouse=warehouse,
        erp_url=f"sqlite:///{demo_erp}",
        crm_url=None,
        dagster_home=tmp_path / "dagster_home",
        dbt_target=fault_dbt_target,
    )
    rc, output, children = _run_watching_children(env, "--as-of", LATER)
    assert rc == 0, output[-3000:]
    # child processes get no source or warehouse URL (they may carry passwords)
    dbt = [pid for pid, (line, _) in children.items() if "dbt" in line]
    assert dbt, f"no dbt child seen: {children}"
    leaking = {
        pid: (line[:80], names)
        for pid, (line, names) in children.items()
        if {"KAM_ERP_URL", "KAM_CRM_URL", "KAM_WAREHOUSE"} & set(names)
    }
    assert not leaking, "\n".join(f"{p}: {v}" for p, v in leaking.items())
    before = sha256(warehouse)

    refused = _kam_run(env, "--as-of", OLDER)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert f"--as-of {OLDER} is older than the as-of date the warehouse holds ({LATER}" in (
        refused.stderr
    ), refused.stderr
    assert "--allow-older" in refused.stderr
    assert sha256(warehouse) == before

    allowed = _kam_run(env, "--as-of", OLDER, "--allow-older")
    assert allowed.returncode == 0, allowed.stdout[-3000:] + allowed.stderr[-3000:]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("select as_of_date from marts.publish_info").fetchall() == [
            (date.fromisoformat(OLDER),)
        ]
        after = [
            con.execute(
                f"select count(*) from marts.{table} where {column} > date '{OLDER}'"
            ).fetchall()[0][0]
            for table, column in (
                ("client_status_history", "as_of_date"),
                ("client_stage_transitions", "transition_date"),
            )
        ]
        assert after == [0, 0]
        assert (
            con.execute(
                f"select count(*) from marts.client_status_history where as_of_date = '{OLDER}'"
            ).fetchall()[0][0]
            > 0
        )
    finally:
        con.close()
