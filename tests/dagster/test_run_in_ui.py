"""`kam run` records a run of the code location, and the Dagster UI shows it.

One `kam run` on the session's small demo, with its own DAGSTER_HOME: the recorded run
carries the job's code origin (so the job page and timeline list it), the run queue's tag
and the partition; a second `kam run` while a run holds the work DB is refused naming
it; `kam dev` serves the UI on that instance and the job page, rendered by headless
Chromium, lists the run, and no sign-up modal covers it. Chromium (Debian's package) is
required when KAM_REQUIRE_BROWSER=1 (set by .ci/run), else its absence skips the browser
test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from ui_server import free_port, start_kam_dev, stop_group, wait_until_serving

BIN = Path(sys.executable).parent
AS_OF = "2026-09-30"

pytestmark = [pytest.mark.slow]


def _env(demo: Path, data: Path, dbt_manifest: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DAGSTER_"))}
    env.update(
        KAM_DATA_DIR=str(data),
        KAM_ERP_URL=f"sqlite:///{demo / 'erp.sqlite'}",
        KAM_CRM_URL=f"sqlite:///{demo / 'crm.sqlite'}",
        DBT_TARGET_PATH=str(dbt_manifest.parent),
    )
    return env


@pytest.fixture(scope="module")
def recorded_run(dbt_manifest: Path, demo_sources: Path, tmp_path_factory) -> dict:
    data = tmp_path_factory.mktemp("ui") / "data"
    env = _env(demo_sources, data, dbt_manifest)
    proc = subprocess.run(
        [str(BIN / "kam"), "run", "--as-of", AS_OF],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"env": env, "home": data / "dagster_home", "output": proc.stdout + proc.stderr}


def _instance(home: Path):
    import dagster as dg

    # from the folder's own dagster.yaml: no DAGSTER_HOME set in this process for later tests
    return dg.DagsterInstance.from_config(str(home))


def test_the_run_has_the_code_origin_queue_tag_and_partition(recorded_run: dict) -> None:
    with _instance(recorded_run["home"]) as instance:
        [run] = instance.get_runs()
    assert run.job_name == "kam_daily"
    assert run.remote_job_origin is not None, "no code origin: the job page would not list it"
    assert run.remote_job_origin.repository_origin.get_label() == "__repository__@kam"
    assert run.tags["kam/work_db"] == "writer"  # the run queue's one-writer limit
    assert run.tags["dagster/partition"] == AS_OF
    assert run.status.value == "SUCCESS"


def test_console_output_is_condensed(recorded_run: dict) -> None:
    lines = recorded_run["output"].splitlines()
    assert "Traceback" not in recorded_run["output"]
    assert not any(" START " in line for line in lines), "dbt's per-node lines reached stdout"
    # dbt's progress, condensed to lines like "dbt: 12/38 models, 40/125 tests", ending done
    progress = [
        m for line in lines if (m := re.search(r"dbt: (\d+)/(\d+) models, (\d+)/(\d+) tests", line))
    ]
    assert progress, "no dbt progress line"
    done_models, all_models, done_tests, all_tests = map(int, progress[-1].groups())
    assert (done_models, done_tests) == (all_models, all_tests) and all_models > 30
    assert len(lines) < 150, len(lines)


def test_a_second_run_is_refused_while_a_run_holds_the_work_db(recorded_run: dict) -> None:
    import dagster as dg

    holder = str(uuid.uuid4())
    with _instance(recorded_run["home"]) as instance:
        instance.add_run(
            dg.DagsterRun(
                job_name="kam_daily",
                run_id=holder,
                status=dg.DagsterRunStatus.STARTED,
                tags={
                    "kam/work_db": "writer",
                    "kam/pid": str(os.getpid()),  # alive: not an abandoned run
                    "kam/host": socket.gethostname(),
                },
            )
        )
        try:
            proc = subprocess.run(
                [str(BIN / "kam"), "run", "--as-of", AS_OF],
                env=recorded_run["env"],
                capture_output=True,
                text=True,
                timeout=300,
            )
            runs = instance.get_runs()
        finally:
            instance.delete_run(holder)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"run {holder} holds the work DB" in proc.stderr
    assert len(runs) == 2  # the first run and the holder: no run was recorded


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_job_page_lists_the_run_in_a_browser(recorded_run: dict, tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("KAM_REQUIRE_BROWSER") == "1":
            pytest.fail("KAM_REQUIRE_BROWSER=1 but chromium is not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    with _instance(recorded_run["home"]) as instance:
        [run] = instance.get_runs()
    port = free_port()
    env = {**recorded_run["env"], "DAGSTER_HOME": str(recorded_run["home"])}
    log = tmp_path / "dev.log"
    server = start_kam_dev(BIN / "kam", env, port, log)
    try:
        wait_until_serving(server, port, log, timeout_s=240)
        # the instance kam wrote turns Dagster's sign-up modal off (nux: enabled: false);
        # the UI asks this query before it shows "Join the Dagster community"
        query = json.dumps({"query": "query ShouldShowNux { shouldShowNux }"}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=query,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            nux = json.loads(answer.read())
        url = f"http://127.0.0.1:{port}/locations/kam/jobs/kam_daily/runs"
        browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu"]
        browser += ["--virtual-time-budget=20000", "--window-size=1600,1000"]
        dom = subprocess.run(
            [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120
        ).stdout
        screenshot = tmp_path / "job_page.png"
        subprocess.run([*browser, f"--screenshot={screenshot}", url], timeout=120, check=False)
    finally:
        stop_group(server, timeout_s=30)
    assert nux == {"data": {"shouldShowNux": False}}, nux
    # the page as rendered (20 s of virtual time: the modal would open after 1 s)
    assert "Join the Dagster community" not in dom, "the sign-up modal covers the page"
    assert "kam_daily" in dom
    assert run.run_id[:8] in dom, "the job page does not list the run kam started"
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
