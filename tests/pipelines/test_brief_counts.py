"""The brief's counts say "1 manager", not "1 managers" (Online Retail and a rebuilt page
often have one): the run log's line, the index page's header."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipelines.brief.build import BriefResult, ManagerBrief
from pipelines.brief.render import counted, render_index


def test_counted_puts_the_noun_in_its_number() -> None:
    assert counted(1, "manager") == "1 manager"
    assert counted(0, "manager") == "0 managers"
    assert counted(2, "manager page") == "2 manager pages"
    assert counted(3, "analysis", "analyses") == "3 analyses"


def _result(managers: int, at_risk: list[int], actions: list[int]) -> BriefResult:
    ids = [f"M{i}" for i in range(managers)]
    return BriefResult(
        as_of=date(2011, 12, 9),
        folder=Path("briefs/2011-12-09"),
        index=Path("briefs/2011-12-09/index.html"),
        managers={m: Path(f"{m}.html") for m in ids},
        counts={
            m: {"at_risk": r, "actions": a, "winback": 0, "changes": 0}
            for m, r, a in zip(ids, at_risk, actions, strict=True)
        },
        previous_date=None,
        seconds=0.1,
        bytes=1,
    )


def test_the_run_log_line_counts_in_the_singular_and_the_plural() -> None:
    one = _result(1, [1], [1]).describe()
    assert one == (
        "brief for 2011-12-09: 1 manager, 1 key account at risk, 1 open action "
        "-> briefs/2011-12-09/index.html"
    )
    two = _result(2, [3, 0], [0, 0]).describe()
    assert "2 managers, 3 key accounts at risk, 0 open actions" in two


def test_the_index_page_of_one_manager_says_1_manager() -> None:
    brief = ManagerBrief("unassigned", "Unassigned", None, "unassigned.html")
    overview = [{"revenue_at_stake": 10.0, "is_at_risk": True}]
    html = render_index([brief], overview, [], "", date(2011, 12, 9), "abcdef123456")
    assert "1 client · 1 manager · published run abcdef12" in html
