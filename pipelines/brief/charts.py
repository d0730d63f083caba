"""Charts as inline SVG text, written directly (no plotting library, no display, no network).

The brief's charts are two kinds of bar chart (stacked stages, one client's revenue per
month). Drawn with matplotlib they cost ~0.1 s each, and a 20,000-client brief has ~1,100
of them (~110 s, more than the rest of the brief and the publish together); written here
as SVG elements they cost well under a millisecond each. What a manager gets is the same:
offline SVG with no JavaScript, fonts or images fetched at view time, text kept as text
(small, searchable, read by screen readers; each chart has a ``<title>`` and an
``aria-label``), the same data drawing the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from html import escape

STAGE_ORDER = ("acquisition", "development", "maturity", "decline", "churn")
STAGE_COLOURS = {
    "acquisition": "#8ecae6",
    "development": "#219ebc",
    "maturity": "#2a9d8f",
    "decline": "#f4a261",
    "churn": "#e76f51",
}
REVENUE_COLOUR = "#457b9d"
_AXIS = "#333333"
_GRID = "#e5e5e5"
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values from at or below ``min(low, 0)`` to at or above ``max(high, 0)``,
    at a step of 1, 2, 2.5 or 5 times a power of ten, at most ``most`` + 1 ticks."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        high = 1.0
    raw = (high - low) / max(most - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    count = round((last - first) / step)
    return [round(first + i * step, 10) for i in range(count + 1)]


def _tick_label(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _num(value: float) -> str:
    """Coordinates with two decimals at most (stable, short)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class _Plot:
    """A bar chart's frame: the plot area inside a ``width`` x ``height`` SVG (points)."""

    def __init__(self, width: float, height: float, box: tuple[float, float, float, float]) -> None:
        self.width, self.height = width, height
        self.left, self.top, self.right, self.bottom = box
        self.parts: list[str] = []

    def y_axis(self, ticks: Sequence[float], font: float) -> None:
        self.low, self.high = ticks[0], ticks[-1]
        for tick in ticks:
            y = self.y(tick)
            self.parts.append(
                f'<line x1="{_num(self.left)}" x2="{_num(self.right)}" y1="{_num(y)}" '
                f'y2="{_num(y)}" stroke="{_GRID if tick else _AXIS}" stroke-width="0.6"/>'
            )
            self.parts.append(
                f'<text x="{_num(self.left - 3)}" y="{_num(y + font * 0.35)}" '
                f'text-anchor="end" font-size="{_num(font)}">{_tick_label(tick)}</text>'
            )
        self.parts.append(
            f'<line x1="{_num(self.left)}" x2="{_num(self.left)}" y1="{_num(self.top)}" '
            f'y2="{_num(self.bottom)}" stroke="{_AXIS}" stroke-width="0.8"/>'
        )

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return self.bottom - share * (self.bottom - self.top)

    def slots(self, count: int) -> tuple[float, float]:
        """(slot width, bar width) of ``count`` bars across the plot area."""
        slot = (self.right - self.left) / max(count, 1)
        return slot, slot * 0.8

    def bar(self, x: float, width: float, start: float, end: float, colour: str, label: str):
        top, bottom = sorted((self.y(start), self.y(end)))
        self.parts.append(
            f'<rect x="{_num(x)}" y="{_num(top)}" width="{_num(width)}" '
            f'height="{_num(bottom - top)}" fill="{colour}"><title>{escape(label)}</title></rect>'
        )

    def text(self, x: float, y: float, text: str, size: float, extra: str = "") -> None:
        self.parts.append(
            f'<text x="{_num(x)}" y="{_num(y)}" font-size="{_num(size)}"{extra}>'
            f"{escape(text)}</text>"
        )

    def svg(self, title: str) -> str:
        shown = escape(title)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(self.width)}pt" '
            f'height="{_num(self.height)}pt" viewBox="0 0 {_num(self.width)} '
            f'{_num(self.height)}" role="img" aria-label="{shown}" style="{_FONT}" '
            f'fill="{_AXIS}"><title>{shown}</title>{"".join(self.parts)}</svg>'
        )


def stage_chart(counts: Mapping[date, Mapping[str, int]], title: str) -> str:
    """Stacked bars: clients per lifecycle stage at each date (oldest first), a legend
    of the stages present below."""
    dates = sorted(counts)
    stages = [s for s in STAGE_ORDER if any(int(counts[d].get(s, 0)) for d in dates)]
    totals = [sum(int(counts[d].get(s, 0)) for s in stages) for d in dates]
    plot = _Plot(504, 201.6, (48, 22, 499, 150))
    plot.y_axis(nice_ticks(0, max(totals, default=0)), 8)
    plot.text(10, 86, "clients", 8, ' transform="rotate(-90 10 86)" text-anchor="middle"')
    slot, width = plot.slots(len(dates))
    for i, day in enumerate(dates):
        x = plot.left + i * slot + (slot - width) / 2
        bottom = 0
        for stage in stages:
            value = int(counts[day].get(stage, 0))
            if value:
                label = f"{day:%b %y} {stage}: {value:,}"
                plot.bar(x, width, bottom, bottom + value, STAGE_COLOURS[stage], label)
                bottom += value
        plot.text(x + width / 2, plot.bottom + 11, f"{day:%b %y}", 8, ' text-anchor="middle"')
    x = plot.left
    for stage in stages:
        plot.parts.append(
            f'<rect x="{_num(x)}" y="{_num(plot.bottom + 22)}" width="8" height="8" '
            f'fill="{STAGE_COLOURS[stage]}"/>'
        )
        plot.text(x + 11, plot.bottom + 29, stage, 7)
        x += 11 + 3.9 * len(stage) + 12
    plot.text(plot.left, 14, title, 10)
    return plot.svg(title)


def revenue_chart(months: Sequence[date], revenue: Sequence[float], title: str) -> str:
    """Small bars: one client's net revenue per month (a negative month below the axis)."""
    values = [float(v) for v in revenue]
    plot = _Plot(244.8, 108, (40, 17, 240, 80))
    plot.y_axis(nice_ticks(min(values, default=0), max(values, default=0), most=4), 6)
    slot, width = plot.slots(len(months))
    for i, (month, value) in enumerate(zip(months, values, strict=True)):
        x = plot.left + i * slot + (slot - width) / 2
        if value:
            plot.bar(x, width, 0, value, REVENUE_COLOUR, f"{month:%b %Y}: {value:,.2f}")
        at_x, at_y = _num(x + width / 2 + 2), _num(plot.bottom + 3)
        rotated = f' text-anchor="end" transform="rotate(-90 {at_x} {at_y})"'
        plot.text(x + width / 2 + 2, plot.bottom + 3, f"{month:%b}", 6, rotated)
    plot.text(4, 11, title, 8)
    return plot.svg(title)
