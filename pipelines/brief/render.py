"""The brief's HTML: one self-contained page (inline CSS and SVG, no script, no link)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.brief.build import ManagerBrief

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d3557}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#6c757d;font-size:12px}
.up{color:#c1121f}.down{color:#2a9d8f}.charts{display:flex;flex-wrap:wrap;gap:12px}
.kpi{display:inline-block;margin:0 24px 8px 0}.kpi b{font-size:20px;display:block}
"""


def _e(value: Any) -> str:
    return "" if value is None else escape(str(value))


def money(value: Any) -> str:
    if value is None:
        return ""
    return f"{Decimal(str(value)).quantize(Decimal('0.01')):,}"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in its number ("1 manager", "2 managers"): the brief's counts
    are often 1 (one account manager, one page rebuilt)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def percent(value: Any, digits: int = 0) -> str:
    return "" if value is None else f"{float(value) * 100:.{digits}f} %"


def _trend(value: float | None) -> str:
    if value is None:
        return '<span class="muted">no trend yet</span>'
    points = value * 100
    css = "up" if points > 0.5 else "down" if points < -0.5 else "muted"
    return f'<span class="{css}">{points:+.0f} pts in 7 days</span>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(value: Any, numeric: bool = False, raw: bool = False) -> str:
    text = value if raw else _e(value)
    return f'<td class="n">{text}</td>' if numeric else f"<td>{text}</td>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def render_manager(b: ManagerBrief, as_of: date, previous: date | None, run_id: str) -> str:
    p = b.portfolio
    kpis = [
        ("key clients", p.get("key_client_count")),
        ("at risk (key)", len(b.at_risk)),
        ("open actions", len(b.actions)),
        ("win-back", len(b.winback)),
        ("revenue 365 d", money(p.get("revenue_365d"))),
    ]
    parts = [
        f"<h1>{_e(b.manager_name)}: your day, {as_of.isoformat()}</h1>",
        f'<p class="muted">manager {_e(b.manager_id)}{" · team " + _e(b.team) if b.team else ""}'
        f" · published run {_e(run_id[:8])}</p>",
        "".join(f'<span class="kpi"><b>{_e(v)}</b>{_e(k)}</span>' for k, v in kpis),
        f'<h2 id="at-risk">Key accounts at risk ({len(b.at_risk)})</h2>',
    ]
    if b.at_risk:
        parts.append(
            _table(
                ["client", "class", "probability", "trend", "why", "days silent", "at stake"],
                (
                    [
                        _td(c["client_name"]),
                        _td(c["abc_class"]),
                        _td(percent(c["churn_probability"], 1), numeric=True),
                        _td(_trend(c["probability_trend"]), raw=True),
                        _td(c["reasons"]),
                        _td(c["days_since_last_contact"], numeric=True),
                        _td(money(c["revenue_at_stake"]), numeric=True),
                    ]
                    for c in b.at_risk
                ),
                "at-risk",
            )
        )
        charts = "".join(f"<div>{svg}</div>" for svg in b.revenue_charts.values())
        parts.append(f'<div class="charts">{charts}</div>')
    else:
        parts.append("<p>No key account is at risk today.</p>")
    parts.append(f'<h2 id="actions">Actions, today and still open ({len(b.actions)})</h2>')
    if b.actions:
        parts.append(
            _table(
                ["#", "client", "action", "due", "age (days)", "why"],
                (
                    [
                        _td(a.get("manager_rank"), numeric=True),
                        _td(a["client_name"]),
                        _td(str(a["action_type"]).replace("_", " ")),
                        _td(a["due_date"]),
                        _td(a["age_days"], numeric=True),
                        _td(a["reason"]),
                    ]
                    for a in b.actions
                ),
                "actions",
            )
        )
    else:
        parts.append("<p>No open action.</p>")
    parts.append(f'<h2 id="winback">Win-back candidates handed to you ({len(b.winback)})</h2>')
    if b.winback:
        parts.append(
            _table(
                ["#", "client", "value before leaving", "class", "lost by", "why they left"],
                (
                    [
                        _td(w["priority"], numeric=True),
                        _td(w["client_name"]),
                        _td(money(w["value_before_leaving"]), numeric=True),
                        _td(w["value_class_before_leaving"]),
                        _td(w["lost_by_manager_id"]),
                        _td(w["churn_reasons"]),
                    ]
                    for w in b.winback
                ),
                "winback",
            )
        )
    else:
        parts.append("<p>None.</p>")
    since = f"since {previous.isoformat()}" if previous else "(no earlier day to compare with)"
    parts.append(f'<h2 id="changes">What changed {since} ({len(b.changes)})</h2>')
    if b.changes:
        parts.append(
            _table(
                ["client", "change", "detail"],
                ([_td(c["client_name"]), _td(c["change"]), _td(c["detail"])] for c in b.changes),
                "changes",
            )
        )
    else:
        parts.append("<p>Nothing changed.</p>")
    if b.stage_chart:
        parts.append(f"<h2>Your portfolio over 12 months</h2><div>{b.stage_chart}</div>")
    return _page(f"KAM brief {as_of} - {b.manager_name}", "".join(parts))


def render_index(
    briefs: Sequence[ManagerBrief],
    overview: Sequence[dict[str, Any]],
    backtest: Sequence[dict[str, Any]],
    company_chart: str,
    as_of: date,
    run_id: str,
) -> str:
    at_risk = sum(len(b.at_risk) for b in briefs)
    stake = sum(float(c["revenue_at_stake"] or 0) for c in overview if c["is_at_risk"])
    parts = [
        f"<h1>KAM brief {as_of.isoformat()}: all managers</h1>",
        f'<p class="muted">{counted(len(overview), "client")} · '
        f"{counted(len(briefs), 'manager')} · "
        f"published run {_e(run_id[:8])}</p>",
        f'<span class="kpi"><b>{at_risk}</b>key accounts at risk</span>',
        f'<span class="kpi"><b>{money(stake)}</b>revenue at stake (at-risk clients)</span>',
        "<h2>Managers</h2>",
        _table(
            [
                "manager",
                "team",
                "key clients",
                "at risk (key)",
                "open actions",
                "win-back",
                "revenue 365 d",
            ],
            (
                [
                    _td(f'<a href="{escape(b.file_name)}">{_e(b.manager_name)}</a>', raw=True),
                    _td(b.team),
                    _td(b.portfolio.get("key_client_count"), numeric=True),
                    _td(len(b.at_risk), numeric=True),
                    _td(len(b.actions), numeric=True),
                    _td(len(b.winback), numeric=True),
                    _td(money(b.portfolio.get("revenue_365d")), numeric=True),
                ]
                for b in sorted(briefs, key=lambda b: b.manager_name)
            ),
            "managers",
        ),
        f"<h2>Stage flow of the company</h2><div>{company_chart}</div>",
        "<h2>How often the flags were right (backtest)</h2>",
    ]
    # pooled over every backtest date and segment (signal_backtest period 'all', segment 'all')
    overall = [
        r
        for r in backtest
        if r.get("period") == "all" and r.get("is_all_segments", r.get("segment") == "all")
    ]
    if overall:
        parts.append(
            _table(
                ["period", "flag", "cases", "flagged", "hits", "precision", "recall", "base rate"],
                (
                    [
                        _td(r.get("period")),
                        _td(r.get("flag")),
                        _td(r.get("cases"), numeric=True),
                        _td(r.get("flagged"), numeric=True),
                        _td(r.get("hits"), numeric=True),
                        _td(percent(r.get("flag_precision")), numeric=True),
                        _td(percent(r.get("flag_recall")), numeric=True),
                        _td(percent(r.get("base_rate")), numeric=True),
                    ]
                    for r in overall
                ),
                "backtest",
            )
        )
    else:
        parts.append("<p>No backtest yet (too little history).</p>")
    return _page(f"KAM brief {as_of} - all managers", "".join(parts))
