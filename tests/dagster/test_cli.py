"""The `kam` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def test_generate_writes_sources(tmp_path: Path) -> None:
    from kam_assets.cli import main

    out = tmp_path / "demo"
    assert (
        main(["generate", "--out", str(out), "--clients", "60", "--years", "2", "--seed", "3"]) == 0
    )
    assert (out / "erp.sqlite").exists() and (out / "crm.sqlite").exists()
    assert (out / "planted.json").exists()


def test_run_rejects_a_bad_date() -> None:
    from kam_assets.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "--as-of", "2026-13-01"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2011-12-09", "is before the first daily partition, KAM_PARTITIONS_START=2020-01-01"),
        ("2999-01-01", "is not a complete day yet: the last complete day in"),
    ],
)
def test_run_names_an_as_of_date_outside_the_partitions(
    as_of: str, expected: str, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    """Checked before any work, instead of Dagster's 'Could not find a partition'."""
    from kam_assets.cli import main

    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{tmp_path / 'erp.sqlite'}")
    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KAM_PARTITIONS_START", raising=False)
    monkeypatch.delenv("KAM_WAREHOUSE", raising=False)
    assert main(["run", "--as-of", as_of]) == 2
    err = capsys.readouterr().err
    assert f"kam run: as-of {as_of} {expected}" in err
    assert not (tmp_path / "data" / "work").exists()  # nothing was started


def _kam(env_overrides: dict[str, str], *args: str, timeout: int = 300):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DAGSTER_"))}
    env.update(env_overrides)
    return subprocess.run(
        [str(BIN / "kam"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_kam_run_on_a_contract_breaking_source_is_refused_before_any_run(
    dbt_manifest: Path, demo_sources: Path, tmp_path: Path, break_orders
) -> None:
    """A contract break is a preflight failure: a few lines naming the table and column,
    no Dagster run recorded, nothing published."""
    broken = tmp_path / "erp_broken.sqlite"
    break_orders(demo_sources / "erp.sqlite", broken)
    proc = _kam(
        {
            "KAM_DATA_DIR": str(tmp_path / "data"),
            "KAM_ERP_URL": f"sqlite:///{broken}",
            "KAM_CRM_URL": f"sqlite:///{demo_sources / 'crm.sqlite'}",
            "KAM_WAREHOUSE": str(tmp_path / "wh" / "kam.duckdb"),
            "DBT_TARGET_PATH": str(dbt_manifest.parent),
        },
        "run",
        "--as-of",
        "2026-09-30",
    )
    assert proc.returncode == 2
    output = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(output) <= 10, output
    assert "erp.orders" in proc.stderr and "order_date" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "dagster_home").exists()  # no run recorded
    assert not (tmp_path / "wh" / "kam.duckdb").exists()


def test_kam_run_on_a_missing_source_folder_says_so_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_export"
    proc = _kam(
        {"KAM_DATA_DIR": str(tmp_path / "data"), "KAM_ERP_URL": str(missing)},
        "run",
        "--as-of",
        "2026-09-30",
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"kam run: KAM_ERP_URL: erp source {missing}: folder does not exist"
    ]
    assert not (tmp_path / "data" / "dagster_home").exists()


def test_kam_check_reports_each_part_and_starts_nothing(demo_sources: Path, tmp_path: Path) -> None:
    env = {"KAM_DATA_DIR": str(tmp_path / "data"), "KAM_ERP_URL": str(tmp_path / "none")}
    bad = _kam(env, "check", timeout=60)
    assert bad.returncode == 2
    assert "settings: ok" in bad.stdout and "sources: 1 problem(s)" in bad.stdout
    assert f"KAM_ERP_URL: erp source {tmp_path / 'none'}: folder does not exist" in bad.stdout
    env["KAM_ERP_URL"] = f"sqlite:///{demo_sources / 'erp.sqlite'}"
    good = _kam(env, "check", timeout=60)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "CRM not configured (orders only)" in good.stdout
    assert not (tmp_path / "data" / "dagster_home").exists()


def test_a_refused_check_or_run_creates_no_folder(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    """README: a refused check writes nothing. The folders' write test used to create
    $KAM_DATA_DIR/warehouse/ (and the data dir) before the sources were found wanting."""
    from kam_assets.cli import main

    monkeypatch.setenv("KAM_ERP_URL", str(tmp_path / "none"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("KAM_WAREHOUSE", raising=False)
    fresh = tmp_path / "fresh" / "data"  # neither it nor its parent exists
    monkeypatch.setenv("KAM_DATA_DIR", str(fresh))
    assert main(["check"]) == 2
    out = capsys.readouterr().out
    assert "folders: ok" in out and "sources: 1 problem(s)" in out
    assert not (tmp_path / "fresh").exists()
    used = tmp_path / "used"  # a data dir that exists, without a warehouse yet
    used.mkdir()
    monkeypatch.setenv("KAM_DATA_DIR", str(used))
    assert main(["check"]) == 2
    assert main(["run", "--as-of", "2026-09-30"]) == 2
    assert "folder does not exist" in capsys.readouterr().err
    assert list(used.iterdir()) == []  # no warehouse/, no preflight file left


def test_runs_left_started_by_a_dead_kam_process_are_marked_failed() -> None:
    import socket

    import dagster as dg

    from kam_assets.cli.abandoned import HOST_TAG, PID_TAG, fail_abandoned_runs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    instance = dg.DagsterInstance.ephemeral()
    runs = {
        "dead": {PID_TAG: str(dead.pid), HOST_TAG: host},
        "alive": {PID_TAG: str(os.getpid()), HOST_TAG: host},
        "other_host": {PID_TAG: str(dead.pid), HOST_TAG: host + "-elsewhere"},
        "no_tags": {},
    }
    for run_id, tags in runs.items():
        instance.add_run(
            dg.DagsterRun(
                job_name="kam_daily", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags
            )
        )
    instance.add_run(
        dg.DagsterRun(
            job_name="other_job",
            run_id="other_job_dead",
            status=dg.DagsterRunStatus.STARTED,
            tags=runs["dead"],
        )
    )
    assert fail_abandoned_runs(instance, "kam_daily") == ["dead"]
    status = {r.run_id: r.status for r in instance.get_runs()}
    assert status["dead"] == dg.DagsterRunStatus.FAILURE
    assert {status[r] for r in ("alive", "other_host", "no_tags", "other_job_dead")} == {
        dg.DagsterRunStatus.STARTED
    }
    assert fail_abandoned_runs(instance, "kam_daily") == []  # only once


BAD_SETTINGS = [
    ("KAM_QUARANTINE_MAX_SHARE", "5"),
    ("KAM_QUARANTINE_MAX_SHARE", "1%"),
    ("KAM_QUARANTINE_MAX_SHARE", "-0.1"),
    ("KAM_ROW_DROP_MAX_SHARE", "1.5"),
    ("KAM_CHUNK_ROWS", "0"),
    ("KAM_WAREHOUSE_RETENTION", "0"),
    ("KAM_REPORT_RETENTION_DAYS", "-1"),
    ("KAM_PG_LOCK_TIMEOUT_MS", "0"),
    ("KAM_PG_PUBLISH_RETRIES", "-1"),
    ("KAM_REVENUE_BAND_DAYS", "0"),
    ("KAM_REVENUE_BAND_K", "ten"),
    ("KAM_DBT_THREADS", "0"),
    ("KAM_SCHEDULE_TIME", "25:00"),
    ("KAM_SCHEDULE_TIMEZONE", "Mars/Olympus"),
    ("KAM_PARTITIONS_START", "2020-13-01"),
    ("KAM_DUCKDB_STORAGE_VERSION", "latest"),
    ("KAM_BI_ROLE", "kam_bi; drop schema marts"),
    ("KAM_LOG_LEVEL", "LOUD"),
    ("KAM_WAREHOUSE", "mysql://host/db"),
]


@pytest.mark.parametrize(("env", "value"), BAD_SETTINGS)
def test_run_refuses_a_bad_setting_before_any_run_is_recorded(
    env: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    from kam_assets.cli import main

    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{tmp_path / 'erp.sqlite'}")
    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("KAM_WAREHOUSE", raising=False)
    monkeypatch.setenv(env, value)
    assert main(["run", "--as-of", "2026-09-30"]) == 2
    err = capsys.readouterr().err
    assert f"kam run: {env}={value!r} " in err
    assert not (tmp_path / "data").exists()  # no Dagster instance, no work DB, nothing


def test_run_refuses_an_unwritable_warehouse_folder_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    from kam_assets.cli import main

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the warehouse folder should be")
    monkeypatch.setenv("KAM_ERP_URL", f"sqlite:///{tmp_path / 'erp.sqlite'}")
    monkeypatch.setenv("KAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KAM_WAREHOUSE", str(blocker / "kam.duckdb"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["run", "--as-of", "2026-09-30"]) == 2
    err = capsys.readouterr().err
    assert f"KAM_WAREHOUSE={blocker / 'kam.duckdb'}: cannot write to the folder {blocker}" in err
    assert not (tmp_path / "data" / "work").exists()
    assert not (tmp_path / "data" / "dagster_home").exists()


def test_a_failed_run_says_what_the_warehouse_holds_and_what_failed() -> None:
    from datetime import date

    from kam_assets.cli.runner import RunOutcome, failure_report

    outcome = RunOutcome(
        success=False,
        run_id="r-new",
        failures=[("manager_brief", "NotADirectoryError: briefs")],
        failed_checks=["marts/x check_y: 2 rows"],
    )
    # the warehouse holds this run's id: it published, then a later step failed
    code, lines = failure_report(outcome, (date(2026, 9, 30), "r-new"), "/d/kam.duckdb")
    assert code == 3
    assert lines == [
        "",
        "kam: run r-new published the warehouse /d/kam.duckdb (as-of 2026-09-30), then FAILED "
        "in a later step: the marts are current, what failed is below",
        "failed step: manager_brief\nerror: NotADirectoryError: briefs",
        "failed check: marts/x check_y: 2 rows",
    ]
    # another run's publication: this one published nothing
    code, lines = failure_report(outcome, (date(2026, 9, 29), "r-old"), "/d/kam.duckdb")
    assert code == 1
    assert lines[1] == (
        "kam: run r-new FAILED, nothing published: the warehouse /d/kam.duckdb still holds "
        "as-of 2026-09-29 (run r-old)"
    )
    code, lines = failure_report(outcome, None, "/d/kam.duckdb")
    assert code == 1
    assert lines[1] == (
        "kam: run r-new FAILED, nothing published: the warehouse /d/kam.duckdb holds nothing "
        "published"
    )
