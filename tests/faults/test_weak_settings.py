"""Weak points: settings without sane bounds and `kam generate` arguments.

* ``KAM_HISTORY_DAYS=999999999`` passed `kam check` and failed later in dbt with a DuckDB
  conversion error; ``KAM_CHUNK_ROWS=1`` was accepted and still extracting 23k rows after
  18 minutes. Both are now refused by `kam check` (exit 2) naming the variable and the range.
* ``kam generate --clients 20`` ended in a traceback; now a one-line error naming the
  argument and its range (exit 2), nothing written.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from faults_support import KAM


def _kam(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAM_", "DAGSTER_", "DBT_"))}
    env.update(KAM_DATA_DIR=str(tmp_path / "data"), **settings)
    return subprocess.run([str(KAM), *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("KAM_HISTORY_DAYS", "999999999", "from 1 to 3,660"),
        ("KAM_CHUNK_ROWS", "1", "from 1,000 to 5,000,000"),
    ],
)
def test_out_of_range_settings_are_refused_by_check(
    tmp_path: Path, variable: str, value: str, allowed: str
) -> None:
    done = _kam(tmp_path, "check", **{variable: value, "KAM_ERP_URL": str(tmp_path)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{variable}={value!r}" in done.stderr and allowed in done.stderr, done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--clients", "20"), "--clients 20: must be from 60"),
        (("--years", "1"), "--years 1: must be from 2"),
        (("--seed", "-1"), "--seed -1: must be from 0"),
    ],
)
def test_generate_validates_its_arguments_in_one_line(
    tmp_path: Path, args: tuple[str, ...], named: str
) -> None:
    out = tmp_path / "demo"
    done = _kam(tmp_path, "generate", "--out", str(out), *args)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], done.stderr
    assert not out.exists()
