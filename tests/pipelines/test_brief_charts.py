"""The brief's charts, written as SVG: valid, self-contained, text kept as text, and bars
whose heights are the data's (known answers computed by hand from the plot's frame)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date

from pipelines.brief.charts import nice_ticks, revenue_chart, stage_chart

SVG = "{http://www.w3.org/2000/svg}"
MONTHS = [date(2025, 10, 1), date(2025, 11, 1), date(2025, 12, 1)]


def _rects(svg: str) -> list[ET.Element]:
    return [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]


def test_nice_ticks_cover_the_data_and_zero() -> None:
    assert nice_ticks(0, 420) == [0, 100, 200, 300, 400, 500]
    assert nice_ticks(-150, 4100.25, most=4) == [-2000, 0, 2000, 4000, 6000]
    assert nice_ticks(0, 0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 7) == [0, 2, 4, 6, 8]


def test_revenue_bars_are_the_months_revenue() -> None:
    svg = revenue_chart(MONTHS, [1000.0, 0.0, -500.0], "Müller & <Söhne>: net revenue per month")
    root = ET.fromstring(svg)  # well-formed, the name escaped
    assert root.find(f"{SVG}title").text == "Müller & <Söhne>: net revenue per month"
    assert root.get("aria-label") == "Müller & <Söhne>: net revenue per month"
    bars = _rects(svg)
    assert [b.find(f"{SVG}title").text for b in bars] == ["Oct 2025: 1,000.00", "Dec 2025: -500.00"]
    # ticks -500..1000 at 500 (most=4): the plot spans y 17..80 for 1,500, zero at 59
    zero = 80 - 500 / 1500 * 63
    assert float(bars[0].get("y")) == round(zero - 1000 / 1500 * 63, 2)
    assert float(bars[0].get("height")) == round(1000 / 1500 * 63, 2)
    assert float(bars[1].get("y")) == round(zero, 2)  # below the axis
    assert float(bars[1].get("height")) == round(500 / 1500 * 63, 2)
    assert [t.text for t in root.iter(f"{SVG}text")][-4:-1] == ["Oct", "Nov", "Dec"]


def test_stage_bars_stack_in_stage_order_and_the_legend_names_the_stages_present() -> None:
    counts = {
        MONTHS[1]: {"maturity": 30, "acquisition": 10},
        MONTHS[0]: {"maturity": 20, "churn": 5},
    }
    svg = stage_chart(counts, "All clients per stage")
    bars = _rects(svg)
    # oldest date first; within a date the stage order, bottom up
    assert [b.find(f"{SVG}title").text for b in bars] == [
        "Oct 25 maturity: 20",
        "Oct 25 churn: 5",
        "Nov 25 acquisition: 10",
        "Nov 25 maturity: 30",
    ]
    # ticks 0..40 over y 22..150: a stack's top is its total, each bar its own count
    assert float(bars[1].get("y")) == round(150 - 25 / 40 * 128, 2)
    assert float(bars[3].get("y")) == round(150 - 40 / 40 * 128, 2)
    assert float(bars[2].get("height")) == round(10 / 40 * 128, 2)
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert texts[-4:] == ["acquisition", "maturity", "churn", "All clients per stage"]
    assert "development" not in texts and "decline" not in texts


def test_the_same_data_draws_the_same_bytes_with_nothing_fetched() -> None:
    one = revenue_chart(MONTHS, [1.0, 2.0, 3.0], "c")
    assert one == revenue_chart(MONTHS, [1.0, 2.0, 3.0], "c")
    assert not re.search(r"href|src=|url\(|<script|@import", one)
