"""Charts as inline SVG text, drawn with matplotlib (Agg, no display, no network).

Why matplotlib: it is maintained (monthly releases), renders offline to SVG with no
JavaScript, fonts or images fetched at view time, and its text stays text
(``svg.fonttype = none``) so a chart is a few kB and readable by a screen reader. Plotly
and Vega-Altair need a ~3 MB JavaScript bundle per page (or a CDN); pygal's interactive
SVG loads its script from the web unless switched off.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import date

STAGE_ORDER = ("acquisition", "development", "maturity", "decline", "churn")
STAGE_COLOURS = {
    "acquisition": "#8ecae6",
    "development": "#219ebc",
    "maturity": "#2a9d8f",
    "decline": "#f4a261",
    "churn": "#e76f51",
}
_PREAMBLE = re.compile(r"^.*?(?=<svg)", re.S)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text as <text>, not paths: small and searchable
            "svg.hashsalt": "kam-brief",  # stable ids: the same data draws the same file
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    _pyplot().close(fig)
    return _PREAMBLE.sub("", buffer.getvalue(), count=1)  # no XML declaration or DOCTYPE


def stage_chart(counts: Mapping[date, Mapping[str, int]], title: str) -> str:
    """Stacked bars: clients per lifecycle stage at each date (oldest first)."""
    plt = _pyplot()
    dates = sorted(counts)
    fig, ax = plt.subplots(figsize=(7.0, 2.8))
    # fixed margins: "tight" bounding boxes draw every figure twice (half the brief's time)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.9, bottom=0.22)
    bottom = [0] * len(dates)
    labels = [d.strftime("%b %y") for d in dates]
    for stage in STAGE_ORDER:
        values = [int(counts[d].get(stage, 0)) for d in dates]
        if any(values):
            ax.bar(labels, values, bottom=bottom, label=stage, color=STAGE_COLOURS[stage])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_title(title, loc="left")
    ax.set_ylabel("clients")
    ax.legend(ncols=5, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0, -0.1))
    return _svg(fig)


def revenue_chart(months: Sequence[date], revenue: Sequence[float], title: str) -> str:
    """Small bars: one client's net revenue per month."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.4, 1.5))
    fig.subplots_adjust(left=0.16, right=0.98, top=0.85, bottom=0.25)
    ax.bar([m.strftime("%b") for m in months], list(revenue), color="#457b9d")
    ax.set_title(title, loc="left", fontsize=8)
    ax.tick_params(axis="x", labelsize=6, rotation=90)
    ax.tick_params(axis="y", labelsize=6)
    return _svg(fig)
