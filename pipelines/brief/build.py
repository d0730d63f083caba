"""Gather one as-of date's brief from the published warehouse and write the HTML files.

Layout: ``<briefs_dir>/<as_of>/index.html`` (sales lead), ``<manager_id>.html`` per manager
with clients or actions, ``summary.json`` (what the Dagster asset and e-mail report).
Folders of as-of dates older than ``retention_days`` before the newest are removed (the
reports' retention, KAM_REPORT_RETENTION_DAYS; 0 keeps all).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipelines.brief import charts
from pipelines.brief.render import counted, render_index, render_manager
from pipelines.brief.warehouse import BriefError, fetch

UNASSIGNED = "unassigned"
#: at-risk key clients per manager that get a revenue chart (the most at stake first)
CHARTED_CLIENTS = 10
STAGE_MONTHS = 12
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class ManagerBrief:
    manager_id: str
    manager_name: str
    team: str | None
    file_name: str
    at_risk: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    winback: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    portfolio: dict[str, Any] = field(default_factory=dict)
    stage_chart: str = ""
    revenue_charts: dict[str, str] = field(default_factory=dict)


@dataclass
class BriefResult:
    as_of: date
    folder: Path
    index: Path
    managers: dict[str, Path]  # manager_id -> page
    counts: dict[str, dict[str, int]]  # manager_id -> {at_risk, actions, winback, changes}
    previous_date: date | None
    seconds: float
    bytes: int
    removed_folders: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The run log's line: how many managers, key accounts at risk and open actions."""
        at_risk = sum(c["at_risk"] for c in self.counts.values())
        actions = sum(c["actions"] for c in self.counts.values())
        return (
            f"brief for {self.as_of}: {counted(len(self.managers), 'manager')}, "
            f"{counted(at_risk, 'key account')} at risk, {counted(actions, 'open action')} "
            f"-> {self.index}"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "index": self.index.name,
            "managers": {k: v.name for k, v in self.managers.items()},
            "counts": self.counts,
            "previous_date": self.previous_date.isoformat() if self.previous_date else None,
            "seconds": round(self.seconds, 3),
            "bytes": self.bytes,
        }


def _q(value: date) -> str:
    return f"date '{value.isoformat()}'"


def _published_as_of(warehouse: str) -> tuple[date, str]:
    [info] = fetch(warehouse, ["select as_of_date, run_id from marts.publish_info"])
    if not info:
        raise BriefError("marts.publish_info is empty: the warehouse was never published")
    return info[0]["as_of_date"], str(info[0]["run_id"])


def _month_dates(history_dates: list[date], as_of: date) -> list[date]:
    """The latest history date at or before each of the last 12 month ends, and D."""
    targets = [_month_start(as_of, k) - timedelta(days=1) for k in range(STAGE_MONTHS - 1, -1, -1)]
    picked: list[date] = []
    for target in [*targets, as_of]:
        candidates = [d for d in history_dates if d <= target]
        if candidates and (not picked or candidates[-1] > picked[-1]):
            picked.append(candidates[-1])
    return picked


def build_briefs(
    warehouse: str,
    briefs_dir: Path,
    as_of: date | None = None,
    manager: str | None = None,
    retention_days: int = 30,
) -> BriefResult:
    """Build the brief of the published as-of date (``as_of`` must equal it when given)."""
    started = time.perf_counter()
    published, run_id = _published_as_of(warehouse)
    if as_of is not None and as_of != published:
        raise BriefError(
            f"the warehouse holds as-of date {published} (run {run_id}), not {as_of}: "
            f"run `kam run --as-of {as_of}` first (briefs read the published warehouse only)"
        )
    as_of = published
    history_dates_rows, overview, portfolio, actions, winback, backtest = fetch(
        warehouse,
        [
            "select distinct as_of_date from marts.client_status_history "
            f"where as_of_date <= {_q(as_of)} and as_of_date > {_q(as_of - timedelta(400))} "
            "order by as_of_date",
            "select * from marts.client_overview",
            "select * from marts.manager_portfolio",
            "select * from marts.kam_actions order by manager_id, manager_rank",
            "select * from marts.winback_candidates where suggested_manager_id is not null "
            "order by priority",
            "select * from marts.signal_backtest",
        ],
    )
    history_dates = [r["as_of_date"] for r in history_dates_rows]
    previous = max((d for d in history_dates if d < as_of), default=None)
    months = _month_dates(history_dates, as_of)
    at_risk_key = [
        c
        for c in overview
        if c["is_key_client"] and (c["is_at_risk"] or c["has_volume_drop"]) and not c["is_churned"]
    ]
    charted = sorted(at_risk_key, key=lambda c: -(c["revenue_at_stake"] or 0))
    in_list = ", ".join(f"'{_sql_text(c['client_id'])}'" for c in charted) or "''"
    compare = [as_of] + ([previous] if previous else [])
    trend_from = max((d for d in history_dates if d <= as_of - timedelta(7)), default=None)
    stage_rows, revenue_rows, today_prev, trend_rows = fetch(
        warehouse,
        [
            "select h.as_of_date, o.account_manager_id, h.lifecycle_stage, count(*) as clients "
            "from marts.client_status_history h "
            "join marts.client_overview o on o.client_id = h.client_id "
            f"where h.as_of_date in ({', '.join(_q(d) for d in months) or _q(as_of)}) "
            "group by 1, 2, 3",
            "select client_id, date_trunc('month', order_date) as month, "
            "sum(net_revenue) as revenue from marts.fct_orders "
            f"where client_id in ({in_list}) and order_date > {_q(as_of - timedelta(365))} "
            f"and order_date <= {_q(as_of)} group by 1, 2",
            "select as_of_date, client_id, lifecycle_stage, is_at_risk, is_churned, "
            "has_volume_drop from marts.client_status_history "
            f"where as_of_date in ({', '.join(_q(d) for d in compare)})",
            "select client_id, churn_probability from marts.client_status_history "
            f"where as_of_date = {_q(trend_from or as_of)} and churn_probability is not null",
        ],
    )
    prob_before = {r["client_id"]: r["churn_probability"] for r in trend_rows} if trend_from else {}
    names = {c["client_id"]: c["client_name"] for c in overview}
    owner = {c["client_id"]: c["account_manager_id"] or UNASSIGNED for c in overview}

    briefs: dict[str, ManagerBrief] = {}

    def brief_of(manager_id: str | None) -> ManagerBrief:
        key = manager_id or UNASSIGNED
        if key not in briefs:
            row = next((p for p in portfolio if p["manager_id"] == key), {})
            name = row.get("manager_name") or next(
                (
                    c["account_manager_name"]
                    for c in overview
                    if c["account_manager_id"] == key and c["account_manager_name"]
                ),
                None,
            )
            briefs[key] = ManagerBrief(
                manager_id=key,
                manager_name=name or key,
                team=row.get("team"),
                file_name=f"{_SAFE.sub('_', key)}.html",
                portfolio=row,
            )
        return briefs[key]

    for p in portfolio:
        if p.get("is_active", True) or p.get("key_client_count"):
            brief_of(p["manager_id"])
    for c in sorted(at_risk_key, key=lambda c: (-(c["revenue_at_stake"] or 0), c["client_id"])):
        before = prob_before.get(c["client_id"])
        now = c["churn_probability"]
        trend = None if before is None or now is None else float(now) - float(before)
        brief_of(c["account_manager_id"]).at_risk.append({**c, "probability_trend": trend})
    for a in actions:
        # age from the action log's opened_on when kam_actions carries it, else unknown
        opened = a.get("opened_on")
        age = a.get("age_days", (as_of - opened).days if opened else None)
        brief_of(a["manager_id"]).actions.append({**a, "age_days": age})
    for w in winback:
        brief_of(w["suggested_manager_id"]).winback.append(w)
    for change in _changes(today_prev, as_of, previous):
        change["client_name"] = names.get(change["client_id"])
        brief_of(owner.get(change["client_id"])).changes.append(change)

    # charts: stage flow per manager (and the company), revenue of charted clients
    per_manager: dict[str, dict[date, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    company: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in stage_rows:
        key = r["account_manager_id"] or UNASSIGNED
        stage = r["lifecycle_stage"]
        per_manager[key][r["as_of_date"]][stage] = int(r["clients"])
        company[r["as_of_date"]][stage] += int(r["clients"])
    revenue: dict[str, dict[date, float]] = defaultdict(dict)
    for r in revenue_rows:
        month = r["month"].date() if hasattr(r["month"], "date") else r["month"]
        revenue[r["client_id"]][month] = float(r["revenue"] or 0)
    chart_months = [_month_start(as_of, k) for k in range(11, -1, -1)]

    selected = {manager} if manager else None
    if selected and manager not in briefs:
        raise BriefError(
            f"manager {manager!r} has nothing in the warehouse of {as_of}: known managers are "
            + ", ".join(sorted(briefs))
        )
    folder = Path(briefs_dir) / as_of.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    pages: dict[str, Path] = {}
    for key, b in sorted(briefs.items()):
        if selected and key not in selected:
            continue
        if key in per_manager:
            b.stage_chart = charts.stage_chart(
                per_manager[key], f"{b.manager_name}: clients per stage, last 12 months"
            )
        for c in b.at_risk[:CHARTED_CLIENTS]:
            series = revenue.get(c["client_id"], {})
            b.revenue_charts[c["client_id"]] = charts.revenue_chart(
                chart_months,
                [series.get(m, 0.0) for m in chart_months],
                f"{c['client_name']}: net revenue per month",
            )
        pages[key] = _write(folder / b.file_name, render_manager(b, as_of, previous, run_id))
    company_chart = charts.stage_chart(company, "All clients per stage, last 12 months")
    index = _write(
        folder / "index.html",
        render_index(list(briefs.values()), overview, backtest, company_chart, as_of, run_id),
    )
    counts = {
        k: {
            "at_risk": len(b.at_risk),
            "actions": len(b.actions),
            "winback": len(b.winback),
            "changes": len(b.changes),
        }
        for k, b in sorted(briefs.items())
    }
    size = sum(p.stat().st_size for p in [index, *pages.values()])
    result = BriefResult(
        as_of=as_of,
        folder=folder,
        index=index,
        managers=pages,
        counts=counts,
        previous_date=previous,
        seconds=time.perf_counter() - started,
        bytes=size,
    )
    summary = result.summary()
    previous_summary = folder / "summary.json"
    if selected and previous_summary.is_file():  # one page rebuilt: the others stay listed
        earlier = json.loads(previous_summary.read_text()).get("managers", {})
        summary["managers"] = {**earlier, **summary["managers"]}
    _write(previous_summary, json.dumps(summary, indent=2, sort_keys=True))
    result.removed_folders = prune_briefs(Path(briefs_dir), retention_days, keep=as_of)
    return result


def _changes(rows: list[dict[str, Any]], as_of: date, previous: date | None) -> list[dict]:
    """New and cleared flags and stage moves between the previous history date and D."""
    if previous is None:
        return []
    today = {r["client_id"]: r for r in rows if r["as_of_date"] == as_of}
    before = {r["client_id"]: r for r in rows if r["as_of_date"] == previous}
    out = []
    for client_id in sorted(today):
        now, was = today[client_id], before.get(client_id)
        if was is None:
            out.append({"client_id": client_id, "change": "new client", "detail": ""})
            continue
        if now["lifecycle_stage"] != was["lifecycle_stage"]:
            out.append(
                {
                    "client_id": client_id,
                    "change": "stage",
                    "detail": f"{was['lifecycle_stage']} -> {now['lifecycle_stage']}",
                }
            )
        for flag, label in (
            ("is_churned", "churned"),
            ("is_at_risk", "at risk"),
            ("has_volume_drop", "volume drop"),
        ):
            if bool(now[flag]) and not bool(was[flag]):
                out.append({"client_id": client_id, "change": "new flag", "detail": label})
            elif bool(was[flag]) and not bool(now[flag]):
                out.append({"client_id": client_id, "change": "cleared flag", "detail": label})
    return out


def _month_start(as_of: date, back: int) -> date:
    month = as_of.month - 1 - back
    return date(as_of.year + month // 12, month % 12 + 1, 1)


def _sql_text(value: str) -> str:
    return str(value).replace("'", "''")


def _write(path: Path, html: str) -> Path:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(html, encoding="utf-8")
    temp.replace(path)
    return path


def prune_briefs(briefs_dir: Path, retention_days: int, keep: date) -> list[str]:
    """Remove brief folders of as-of dates more than ``retention_days`` before ``keep``."""
    if retention_days <= 0 or not briefs_dir.is_dir():
        return []
    removed = []
    for folder in sorted(briefs_dir.iterdir()):
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue  # not a brief folder: never touched
        if folder.is_dir() and day < keep - timedelta(days=retention_days):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed
