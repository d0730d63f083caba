"""The pipeline benchmark at a tiny size: every phase runs and reports positive figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.benchmark.cli import main
from pipelines.benchmark.pipeline import PHASES, ensure_demo_sources

CLIENTS, YEARS = 60, 2
# "  <phase>   <rows>   <seconds>   <rows/s>   <peak RSS MB>  <note>"
ROW = r"^  {phase}\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)\s+(\d+)  "


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _admin_url_or_none(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL server when reachable (KAM_REQUIRE_POSTGRES=1 makes absence fail)."""
    try:
        return request.getfixturevalue("postgres_admin_url")
    except pytest.skip.Exception:
        return None


def test_pipeline_benchmark_reports_every_phase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    cache = tmp_path / "bench"
    admin_url = _admin_url_or_none(request)
    pg_args = ["--pg-url", admin_url] if admin_url else ["--skip-postgres"]
    argv = ["pipeline", "--clients", str(CLIENTS), "--years", str(YEARS), "--cache-dir", str(cache)]

    code = main([*argv, *pg_args])
    out = capsys.readouterr().out

    assert code == 0, out
    assert "PROBLEM" not in out
    summary = out[out.index("pipeline benchmark:") :]
    expected = [p for p in PHASES if admin_url or p != "publish postgres"]
    figures = {}
    for phase in expected:
        match = re.search(ROW.format(phase=re.escape(phase)), summary, re.MULTILINE)
        assert match, f"no figures for phase {phase!r} in:\n{summary}"
        rows, seconds, rate, rss = (_number(g) for g in match.groups())
        assert rows > 0 and seconds > 0 and rate > 0 and rss > 0, match.group(0)
        figures[phase] = rows
    if not admin_url:
        assert "publish postgres" not in summary

    # every generated source row is extracted; the dbt build reads what was extracted
    assert figures["extract"] == figures["generate"]
    assert figures["dbt build"] == figures["extract"]
    # both publishes carry the same marts
    if admin_url:
        assert figures["publish postgres"] == figures["publish duckdb"]
    slowest = re.search(r"slowest models: (.+)$", summary, re.MULTILINE)
    assert slowest and len(slowest.group(1).split(", ")) == 5
    assert re.search(r"\d+ tests [\d.]+ s", summary)
    assert re.search(r"load average [\d.]+ [\d.]+ [\d.]+ at start", summary)

    # the sources are cached for the next run; the run's work files are gone
    folder, _, reused = ensure_demo_sources(CLIENTS, YEARS, cache)
    assert reused and (folder / "erp.sqlite").exists()
    assert not list(cache.glob("run_*"))
