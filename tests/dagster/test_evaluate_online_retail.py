"""`kam evaluate` on real data: the UCI Online Retail export, run by ``kam run`` for
2011-09-09, judged by the 91 days after it (to 2011-12-09, the data's last day).

The known answers come straight from the converted source files with DuckDB, never from
the pipeline's outputs: the cadence rule of docs/rules.md (order days = distinct dates of
completed orders up to D; own interval = median gap with 4+ order days, else the median
over the segment's clients with 2+ order days of their median gap, else 30;
overdue ratio = days since last order / interval; churned from 3, at risk from 1.5) and
the outcome (no completed order in (D, D + 91]); the AUCs by the rank formula in SQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

AS_OF = "2011-09-09"
HORIZON = 91


def expected_backtest(src: Path, as_of: str, horizon: int) -> dict:
    """Counts, precision/recall of the flags and the AUCs from the converted files."""
    con = duckdb.connect()
    con.execute(
        f"""
        create temp table cases as
        with orders as (
            select trim(client_id) as client_id, cast(order_date as date) as day
            from '{src / "orders.parquet"}' where trim(status) = 'completed'
        ),
        days as (select distinct client_id, day from orders where day <= date '{as_of}'),
        gaps as (
            select client_id, day,
                day - lag(day) over (partition by client_id order by day) as gap
            from days
        ),
        hist as (
            select h.client_id, c.segment, h.n_days, h.last_day, h.med_gap
            from (
                select client_id, count(*) as n_days, max(day) as last_day,
                    median(gap) as med_gap
                from gaps group by client_id
            ) h
            join '{src / "clients.parquet"}' c on trim(c.client_id) = h.client_id
        ),
        norms as (
            select segment, median(med_gap) as norm from hist
            where med_gap is not null group by segment
        ),
        later as (
            select distinct client_id from orders
            where day > date '{as_of}' and day <= date '{as_of}' + {horizon}
        )
        select hist.client_id,
            date '{as_of}' - last_day as recency,
            (date '{as_of}' - last_day)
                / coalesce(case when n_days >= 4 then med_gap end, norm, 30.0) as ratio,
            later.client_id is null as lost
        from hist
        left join norms using (segment)
        left join later using (client_id)
        """
    )

    def flag(condition: str) -> dict:
        flagged, hits, lost = con.execute(
            f"select count(*) filter ({condition}), count(*) filter ({condition} and lost), "
            "count(*) filter (lost) from cases"
        ).fetchone()
        return {
            "flagged": flagged,
            "hits": hits,
            "positives": lost,
            "precision": hits / flagged,
            "recall": hits / lost,
        }

    def auc(score: str) -> float:
        return con.execute(
            f"""
            with ranked as (
                select lost, rank() over (order by {score})
                    + (count(*) over (partition by {score}) - 1) / 2.0 as avg_rank
                from cases
            )
            select (sum(avg_rank) filter (lost)
                    - count(*) filter (lost) * (count(*) filter (lost) + 1) / 2.0)
                / (count(*) filter (lost) * count(*) filter (not lost))
            from ranked
            """
        ).fetchone()[0]

    clients, lost = con.execute("select count(*), count(*) filter (lost) from cases").fetchone()
    answers = {
        "clients": clients,
        "lost": lost,
        "is_churned": flag("ratio >= 3"),
        "is_at_risk": flag("ratio >= 1.5 and ratio < 3"),
        "auc_overdue_ratio": auc("ratio"),
        "auc_recency": auc("recency"),
    }
    con.close()
    return answers


def test_kam_evaluate_on_online_retail_matches_the_files(
    online_retail_src: Path, kam_on_online_retail
) -> None:
    kam = kam_on_online_retail
    refused = kam.kam("evaluate", "--as-of", AS_OF, "--horizon-days", str(HORIZON))
    assert refused.returncode == 2 and "no published warehouse" in refused.stderr

    run = kam.kam("run", "--as-of", AS_OF)
    assert run.returncode == 0, run.stderr[-4000:]

    proc = kam.kam("evaluate", "--as-of", AS_OF, "--horizon-days", str(HORIZON), "--json")
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(proc.stdout)
    want = expected_backtest(online_retail_src, AS_OF, HORIZON)

    assert got["horizon_passed"] is True and got["last_data_order_date"] == "2011-12-09"
    assert (got["clients"], got["lost"]) == (want["clients"], want["lost"])
    assert got["clients"] > 3_000 and 0 < got["lost"] < got["clients"]
    for name in ("is_churned", "is_at_risk"):
        g, w = got["flags"][name], want[name]
        assert (g["flagged"], g["hits"], g["positives"]) == (
            w["flagged"],
            w["hits"],
            w["positives"],
        ), name
        assert g["precision"] == pytest.approx(w["precision"], abs=1e-12)
        assert g["recall"] == pytest.approx(w["recall"], abs=1e-12)
    assert got["flags"]["is_churned"]["flagged"] > 500
    assert got["auc_overdue_ratio"] == pytest.approx(want["auc_overdue_ratio"], abs=1e-9)
    assert got["auc_recency"] == pytest.approx(want["auc_recency"], abs=1e-9)

    text = kam.kam("evaluate", "--as-of", AS_OF, "--horizon-days", str(HORIZON))
    assert text.returncode == 0 and "| is_churned |" in text.stdout
    assert "the horizon has fully passed" in text.stdout

    other = kam.kam("evaluate", "--as-of", "2011-06-09", "--horizon-days", "183")
    assert other.returncode == 2
    assert "holds as-of 2011-09-09" in other.stderr and "not 2011-06-09" in other.stderr
