"""The extraction benchmark's reader-alone figures (kam bench extract), at a tiny size."""

from __future__ import annotations

from pathlib import Path

import pytest
import source_fixtures as fx

from pipelines.benchmark.extract_bench import child_read, format_reader


def _urls(tmp_path: Path) -> tuple[str, str]:
    data = fx.base_data()
    return (
        fx.write_sqlite(tmp_path / "erp.sqlite", "erp", data["erp"]),
        fx.write_sqlite(tmp_path / "crm.sqlite", "crm", data["crm"]),
    )


def test_reader_alone_reads_every_table_without_copy_on_sqlite(tmp_path: Path) -> None:
    erp, crm = _urls(tmp_path)
    reader = child_read(erp, crm, chunk_rows=2, repeats=2)
    assert {t["table"]: t["rows"] for t in reader}["erp.order_lines"] == 5
    assert all(t["seconds"] > 0 and t["copy_seconds"] is None for t in reader)
    text = "\n".join(format_reader({"reader": reader, "reader_peak_rss_mb": 100.0}))
    assert "COPY" not in text and "reader peak RSS 100 MB" in text


@pytest.mark.postgres
def test_reader_alone_is_set_beside_copy_on_postgres(pg_url: str) -> None:
    data = fx.base_data()
    fx.write_postgres(pg_url, "erp", data["erp"])
    fx.write_postgres(pg_url, "crm", data["crm"])
    reader = child_read(pg_url, pg_url, chunk_rows=2, repeats=1)
    assert all(t["copy_seconds"] and t["copy_seconds"] > 0 for t in reader)
    text = "\n".join(format_reader({"reader": reader, "reader_peak_rss_mb": 100.0}))
    assert "COPY rows/s" in text and "reader/COPY" in text and "%" in text
