"""A data dir remembers the sources it was built from (kam_assets/cli/data_dir.py).

Pure file logic and refusals made before any run (fast: nothing is extracted or built):
another source is refused in one line naming both and the ways on; the same source
written another way is the same; a credential never reaches the disk; `kam reset`
archives the state and deletes nothing; the recorded sources are reused when
KAM_ERP_URL is unset, and the command says so in its first line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kam_assets.cli import main
from kam_assets.cli.data_dir import (
    command_line,
    make_record,
    mismatch,
    read_record,
    reuse_recorded_sources,
    write_record,
)
from pipelines.settings import Settings


@pytest.fixture
def clean_env(tmp_path: Path) -> Iterator[Path]:
    """No KAM_/DAGSTER_ settings but KAM_DATA_DIR; the commands set variables (the reused
    sources): the whole environment is restored afterwards."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("KAM_", "DAGSTER_")):
            del os.environ[name]
    os.environ["KAM_DATA_DIR"] = str(tmp_path / "data")
    yield tmp_path / "data"
    os.environ.clear()
    os.environ.update(saved)


def _settings(**env: str) -> Settings:
    return Settings.from_env({k.upper(): v for k, v in env.items()})


def test_the_same_source_written_another_way_is_the_same(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "export").mkdir()
    data = str(tmp_path / "data")
    built = _settings(kam_data_dir=data, kam_erp_url="export")
    record = make_record(built, "run", None)
    assert record.erp_url == str(tmp_path / "export") and record.reusable
    assert (
        mismatch(_settings(kam_data_dir=data, kam_erp_url=str(tmp_path / "export")), record) is None
    )
    assert mismatch(_settings(kam_data_dir=data, kam_erp_url="./export/"), record) is None


def test_other_sources_are_refused_in_one_line_naming_both_and_the_ways_on(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    demo = f"sqlite:///{tmp_path}/demo/erp.sqlite"
    crm = f"sqlite:///{tmp_path}/demo/crm.sqlite"
    record = make_record(
        _settings(kam_data_dir=data, kam_erp_url=demo, kam_crm_url=crm), "demo", None
    )
    other = _settings(kam_data_dir=data, kam_erp_url=str(tmp_path / "online_retail"))
    message = mismatch(other, record)
    assert message is not None and "\n" not in message
    assert f"KAM_DATA_DIR={tmp_path / 'data'} was built from ERP {demo}, CRM {crm}" in message
    assert f"not from ERP {tmp_path / 'online_retail'}, CRM none (orders only)" in message
    assert "own KAM_DATA_DIR" in message and command_line("reset") in message
    # the same ERP without its CRM is another source set too (CRM signals would vanish)
    assert mismatch(_settings(kam_data_dir=data, kam_erp_url=demo), record) is not None


def test_a_credential_never_reaches_the_disk(tmp_path: Path) -> None:
    url = "postgresql://reader:S3cretPw@erp-host:5432/erp"
    settings = _settings(kam_data_dir=str(tmp_path / "data"), kam_erp_url=url)
    write_record(settings.data_dir, make_record(settings, "run", "2024-01-01"))
    text = (settings.data_dir / "sources.json").read_text()
    assert "S3cretPw" not in text and "reader:***@erp-host" in text
    record = read_record(settings.data_dir)
    assert record is not None and not record.reusable and record.partitions_start == "2024-01-01"
    assert mismatch(settings, record) is None  # compared by its hash
    moved = _settings(kam_data_dir=str(tmp_path / "data"), kam_erp_url=url.replace("erp-host", "x"))
    assert mismatch(moved, record) is not None


def test_unset_sources_reuse_the_recorded_ones(clean_env: Path, tmp_path: Path, capsys) -> None:
    erp = tmp_path / "export"
    erp.mkdir()
    settings = _settings(kam_data_dir=str(clean_env), kam_erp_url=str(erp))
    write_record(clean_env, make_record(settings, "run", "2010-12-01"))
    assert reuse_recorded_sources(_settings(kam_data_dir=str(clean_env))) is not None
    assert os.environ["KAM_ERP_URL"] == str(erp)
    assert os.environ["KAM_PARTITIONS_START"] == "2010-12-01"
    assert "KAM_CRM_URL" not in os.environ
    # kam check says so in its first line (the folder is empty: the contract fails, exit 2)
    os.environ.pop("KAM_ERP_URL")
    os.environ.pop("KAM_PARTITIONS_START")
    assert main(["check"]) == 2
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        f"kam check: using the sources KAM_DATA_DIR={clean_env} was built from "
        f"(ERP {erp}, CRM none (orders only)); set KAM_ERP_URL for others"
    )


def test_kam_run_on_other_sources_is_refused_before_any_run_and_reset_archives(
    clean_env: Path, tmp_path: Path, capsys
) -> None:
    demo = tmp_path / "demo.sqlite"
    write_record(
        clean_env,
        make_record(
            _settings(kam_data_dir=str(clean_env), kam_erp_url=f"sqlite:///{demo}"), "demo", None
        ),
    )
    for name in ("work", "warehouse", "reports", "demo"):
        (clean_env / name).mkdir(parents=True)
        (clean_env / name / "f").write_text(name)
    os.environ["KAM_ERP_URL"] = str(tmp_path / "other")
    assert main(["run", "--as-of", "2026-09-30"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"kam run: KAM_DATA_DIR={clean_env} was built from")
    assert not (clean_env / "dagster_home").exists()  # nothing started

    assert main(["reset"]) == 0
    out = capsys.readouterr().out
    [archive] = (clean_env / "archive").iterdir()
    assert f"into {archive}" in out
    assert sorted(p.name for p in archive.iterdir()) == [
        "reports",
        "sources.json",
        "warehouse",
        "work",
    ]
    assert (archive / "work" / "f").read_text() == "work"  # moved, not deleted
    assert (clean_env / "demo" / "f").exists()  # generated sources are not state
    assert read_record(clean_env) is None
    assert main(["reset"]) == 0 and "nothing to archive" in capsys.readouterr().out


def test_a_command_line_carries_the_settings_that_locate_the_data_dir(clean_env: Path) -> None:
    line = command_line("run", "--as-of", "2026-09-30")
    assert line.startswith(f"KAM_DATA_DIR={clean_env} ")
    assert line.endswith("/kam run --as-of 2026-09-30")
    assert json.dumps(line)  # plain text


def test_the_default_data_dir_is_printed_absolute(
    clean_env: Path, tmp_path: Path, monkeypatch
) -> None:
    """./data depends on the folder: a printed command names it, so it runs from anywhere."""
    del os.environ["KAM_DATA_DIR"]
    monkeypatch.chdir(tmp_path)
    assert command_line("check").startswith(f"KAM_DATA_DIR={tmp_path / 'data'} ")


def test_the_first_order_month_becomes_the_first_partition(clean_env: Path, tmp_path: Path) -> None:
    """After the first successful run (raw orders in the work DB), unless one was given."""
    import duckdb

    from kam_assets.cli.data_dir import remember_first_order_month

    settings = _settings(kam_data_dir=str(clean_env), kam_erp_url=str(tmp_path / "export"))
    write_record(clean_env, make_record(settings, "run", None))
    settings.work_db.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.work_db)) as con:
        con.execute("create schema raw_erp")
        con.execute(
            "create table raw_erp.orders as select * from (values "
            "('o1', date '2024-05-01'), ('o2', date '2024-03-15'), ('o3', date '2026-09-30')"
            ") t(order_id, order_date)"
        )
    assert remember_first_order_month(settings) == "2024-03-01"
    record = read_record(clean_env)
    assert record is not None and record.partitions_start == "2024-03-01"
    assert remember_first_order_month(settings) is None  # recorded once; a given one wins
    # the next command in this data dir starts its partitions there (KAM_PARTITIONS_START unset)
    reuse_recorded_sources(_settings(kam_data_dir=str(clean_env)))
    assert os.environ["KAM_PARTITIONS_START"] == "2024-03-01"
