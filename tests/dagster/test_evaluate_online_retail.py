"""`kam evaluate` on real data: the UCI Online Retail export, run by ``kam run`` for
2011-09-09, judged by the 91 days after it (to 2011-12-09, the data's last day).

The known answers come straight from the converted source files with DuckDB, never from
the pipeline's outputs: the cadence rule of docs/rules.md (order days = distinct dates of
completed orders up to D; own interval = median gap with 4+ order days, else the median
over the segment's clients with 2+ order days of their median gap, else 30;
overdue ratio = days since last order / interval) and the outcome (no completed order
in (D, D + 91]); the AUCs by the rank formula in SQL. The cadence rule's factors are the
defaults of docs/rules.md (churned from 3.0x, at risk from 1.5x: Online Retail has no segment
policy; nothing is learned from past cases), published per segment and order-days band (1,
2-3, 4+). Past cases every 7 days back from D (within 730 days), horizon = ceil(clamp(3 x
interval, 30, 365)) passed by D, give the expected signal_backtest row of one backtest date.

The published flags are the churn score's (docs/rules.md "Churn score"): churned where the
published churn_probability reaches the report's churned level and the overdue ratio (this
file's) is at least 1.5, at risk from the at-risk level above 1.0; the AUC of the published
probability is computed here from the files' outcomes and must be at least recency's.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

AS_OF = "2011-09-09"
HORIZON = 91
#: the backtest date whose signal_backtest rows are checked (D - 140 days)
BACKTEST_DATE = "2011-04-22"
#: the default factors of dbt/dbt_project.yml (churn_ratio, at_risk_ratio)
CHURN_RATIO = 3.0
AT_RISK_RATIO = 1.5
BAND_SQL = "case when n_days = 1 then '1' when n_days <= 3 then '2-3' else '4+' end"


def cadence_sql(src: Path, as_of_dates: str, cut: str) -> str:
    """Per (as-of date, client with an order up to it): the cadence rule of docs/rules.md,
    with the order days up to ``cut`` for the next order. ``as_of_dates`` is a query with
    one column ``t``."""
    return f"""
        with orders as (
            select distinct trim(client_id) as client_id, cast(order_date as date) as day
            from '{src / "orders.parquet"}'
            where trim(status) = 'completed' and cast(order_date as date) <= date '{cut}'
        ),
        gaps as (
            select client_id, day,
                day - lag(day) over (partition by client_id order by day) as gap
            from orders
        ),
        dates as ({as_of_dates}),
        hist as (
            select d.t, g.client_id, count(*) as n_days, max(g.day) as last_day,
                median(g.gap) as med_gap
            from dates d join gaps g on g.day <= d.t group by d.t, g.client_id
        ),
        seg as (
            select h.*, c.segment from hist h
            join '{src / "clients.parquet"}' c on trim(c.client_id) = h.client_id
        ),
        norms as (
            select t, segment, median(med_gap) as norm from seg
            where med_gap is not null group by t, segment
        ),
        nxt as (
            select d.t, o.client_id, min(o.day) as next_day
            from dates d join orders o on o.day > d.t group by d.t, o.client_id
        )
        select seg.t, seg.client_id, seg.segment, seg.n_days, seg.t - seg.last_day as recency,
            coalesce(case when n_days >= 4 then med_gap end, norm, 30.0) as expected,
            (seg.t - seg.last_day)
                / coalesce(case when n_days >= 4 then med_gap end, norm, 30.0) as ratio,
            nxt.next_day
        from seg
        left join norms using (t, segment)
        left join nxt using (t, client_id)
    """


def past_cases_and_factors(con: duckdb.DuckDBPyConnection, src: Path, as_of: str) -> None:
    """Tables ``past_cases`` (backtest dates before D, horizon passed) and ``factors``
    (segment, band, churn, at_risk: the defaults in every cell), in this test's own SQL."""
    dates = (
        f"select cast(date '{as_of}' - cast(k * 7 as integer) as date) as t "
        f"from range(1, 105) r(k) where k * 7 <= 729"
    )
    con.execute(
        f"""
        create temp table past_cases as
        with c as ({cadence_sql(src, dates, as_of)}),
        h as (
            select *, cast(ceil(least(greatest(3 * expected, 30), 365)) as integer) as horizon
            from c
        )
        select *, (next_day is null or next_day > t + horizon) as lost
        from h where t + horizon <= date '{as_of}'
        """
    )
    con.execute(
        f"""
        create temp table factors as
        select segment, band, {CHURN_RATIO} as churn, {AT_RISK_RATIO} as at_risk
        from (select distinct segment from past_cases)
        cross join (values ('1'), ('2-3'), ('4+')) b(band)
        """
    )


def expected_backtest(src: Path, as_of: str, horizon: int, published: dict) -> dict:
    """Counts, precision/recall of the flags and the AUCs from the converted files.

    ``published``: the run's churn score (``probabilities``: client_id -> churn_probability,
    ``churned_level``, ``at_risk_level``): its AUC is computed here from the files' outcomes,
    and the flags by the documented rule from it and this file's own overdue ratios (churned
    from the churned level at 1.5x or later, at risk from the at-risk level after 1.0x)."""
    con = duckdb.connect()
    past_cases_and_factors(con, src, as_of)
    con.execute("create temp table published (client_id varchar, p double)")
    con.executemany("insert into published values (?, ?)", list(published["probabilities"].items()))
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
            later.client_id is null as lost,
            coalesce(factors.churn, {CHURN_RATIO}) as churn,
            coalesce(factors.at_risk, {AT_RISK_RATIO}) as at_risk,
            published.p
        from hist
        left join norms using (segment)
        left join later using (client_id)
        left join published using (client_id)
        left join factors on factors.segment = hist.segment and factors.band = ({BAND_SQL})
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
            "precision": hits / flagged if flagged else None,
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
    day = con.execute(
        f"""
        select
            count(*) filter (ratio >= churn and lost), count(*) filter (ratio >= churn),
            count(*) filter (ratio >= at_risk and ratio < churn and lost),
            count(*) filter (ratio >= at_risk and ratio < churn),
            count(*) filter (lost), count(*)
        from past_cases join factors on factors.segment = past_cases.segment
            and factors.band = ({BAND_SQL})
        where t = date '{BACKTEST_DATE}'
        """
    ).fetchone()
    factors = {(s, b): (c, a) for s, b, c, a in con.execute("select * from factors").fetchall()}
    # no level: nobody flagged by the score (churn-score-7: no level validated beyond doubt)
    churned = (
        f"p >= {published['churned_level']} and ratio >= 1.5"
        if published["churned_level"] is not None
        else "false"
    )
    at_risk = (
        f"p >= {published['at_risk_level']} and not ({churned}) and ratio > 1.0"
        if published["at_risk_level"] is not None
        else "false"
    )
    answers = {
        "clients": clients,
        "lost": lost,
        "is_churned": flag(churned),
        "is_at_risk": flag(at_risk),
        "not_churned_lost_share": con.execute(
            f"select avg(lost::int) from cases where not ({churned})"
        ).fetchone()[0],
        "auc_published": auc("p"),
        "auc_overdue_ratio": auc("ratio"),
        "auc_recency": auc("recency"),
        "past_cases": con.execute("select count(*) from past_cases").fetchone()[0],
        "churn_factors": factors,
        # (hits, flagged, lost, cases) of churned and at risk on BACKTEST_DATE
        "backtest_churned": (day[0], day[1], day[4], day[5]),
        "backtest_at_risk": (day[2], day[3], day[4], day[5]),
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
    wh = duckdb.connect(str(kam.warehouse), read_only=True)
    try:
        probabilities = dict(
            wh.execute(
                "select client_id, churn_probability from marts.client_churn_signals "
                "where days_since_last_order is not null"
            ).fetchall()
        )
        levels = wh.execute(
            "select distinct churned_level, at_risk_level, candidate, recency_weight, "
            "fitted_recency_weight, lost_share_drift "
            "from marts.churn_model_report where is_chosen"
        ).fetchall()
        notes = [
            n
            for (n,) in wh.execute(
                "select distinct notes from marts.churn_model_report where is_chosen"
            ).fetchall()
        ]
        sources = wh.execute(
            "select distinct flag_source from marts.client_churn_signals "
            "where days_since_last_order is not null"
        ).fetchall()
        claims = wh.execute(
            "select distinct horizon_days, churned_precision, at_risk_precision "
            "from marts.churn_model_report where is_chosen"
        ).fetchall()
    finally:
        wh.close()
    # beside each flag's realized precision, the precision the report published for it
    # and the score's horizon it is claimed for; no claim for the union and the volume rule
    assert len(claims) == 1, claims
    score_horizon, churned_claim, at_risk_claim = claims[0]
    for name, claimed in (
        ("is_churned", churned_claim),
        ("is_at_risk", at_risk_claim),
        ("churned_or_at_risk", None),
        ("has_volume_drop", None),
    ):
        g = got["flags"][name]
        if claimed is None:
            assert g["claimed_precision"] is None and g["claimed_horizon_days"] is None, name
            assert g["claim_holds"] is None, name
            continue
        assert g["claimed_precision"] == pytest.approx(claimed, abs=1e-12), name
        assert g["claimed_horizon_days"] == score_horizon, name
        if score_horizon != HORIZON or g["precision"] is None:
            assert g["claim_holds"] is None, name
        else:
            assert g["claim_holds"] is (g["precision"] >= claimed), name
    # the score rests on the data's own past: a learned model, its flags from its levels
    assert len(levels) == 1 and levels[0][2] in (
        "logistic",
        "logistic_rfm",
        "gradient_boosting",
        "blend",
    ), levels
    assert sources == [("score",)]
    # kam evaluate says what churn_probability publishes: the report's mix columns
    assert got["published"] == {
        "candidate": levels[0][2],
        "recency_weight": levels[0][3],
        "fitted_recency_weight": levels[0][4],
        "drift": levels[0][5],
    }
    assert levels[0][3] is not None and 0 <= levels[0][4] <= levels[0][3] <= 1
    published = {
        "probabilities": probabilities,
        "churned_level": levels[0][0],
        "at_risk_level": levels[0][1],
    }
    want = expected_backtest(online_retail_src, AS_OF, HORIZON, published)

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
        if w["precision"] is None:
            assert g["precision"] is None, name
        else:
            assert g["precision"] == pytest.approx(w["precision"], abs=1e-12)
        assert g["recall"] == pytest.approx(w["recall"], abs=1e-12)
    # the churned flag only where a level's precision reaches 0.8 beyond doubt on the
    # windows (the lower end of its 95 % range, each client once): on this date none does
    # (closest 0.62 on 176 clients, lower end 0.56) and the report says so. Before
    # churn-score-7 the point precision set a level here: 50 flagged, 0.76 of them lost
    # within 91 days (churn-score-4/5; 289 at 0.66 on churn-score-3)
    churned_flag = got["flags"]["is_churned"]
    if levels[0][0] is None:
        assert churned_flag["flagged"] == 0
        assert any("no churned flag" in (n or "") for n in notes), notes
    else:
        assert churned_flag["flagged"] >= 20 and churned_flag["precision"] > 0.65
    assert got["auc_overdue_ratio"] == pytest.approx(want["auc_overdue_ratio"], abs=1e-9)
    assert got["auc_recency"] == pytest.approx(want["auc_recency"], abs=1e-9)

    # the published churn score ranks better than recency on this data (docs/benchmarks.md),
    # its AUC computed here from the files' outcomes
    assert got["auc_churn_probability"] == pytest.approx(want["auc_published"], abs=1e-9)
    assert want["auc_published"] >= want["auc_recency"]
    assert got["auc_churn_probability"] > got["auc_recency"] + 0.02
    assert got["auc_probability_cases"] == got["clients"]
    # every candidate ranked on the same clients; the chosen one is the published score
    # (Platt scaling keeps its ranking)
    assert set(got["candidate_aucs"]) == {
        "recency",
        "cadence_rule",
        "logistic",
        "logistic_rfm",
        "gradient_boosting",
        "blend",
    }
    assert got["candidate_cases"] == got["clients"]
    assert got["candidate_aucs"]["recency"] == pytest.approx(want["auc_recency"], abs=1e-9)
    chosen_auc = got["candidate_aucs"][got["chosen_candidate"]]
    assert chosen_auc == pytest.approx(got["auc_churn_probability"], abs=1e-3)
    # at risk is lost clearly more often than the not-churned are as a whole (issue 20's
    # target). churn-score-8's band: validated precision halfway to 0.8, its lower end above
    # the not-churned share; here 856 clients, 0.66 lost within 91 days vs 0.43 (churn-score-7,
    # the lower end itself halfway, set none; churn-score-5: 799 at 0.66)
    assert levels[0][1] is not None, notes
    assert got["flags"]["is_at_risk"]["flagged"] >= 20
    assert got["flags"]["is_at_risk"]["precision"] > want["not_churned_lost_share"]

    # the run's evidence marts against this file's own SQL of the rule
    wh = duckdb.connect(str(kam.warehouse), read_only=True)
    try:
        bands = {"1 order day": "1", "2-3 order days": "2-3", "4+ order days": "4+"}
        factors = {
            (s, bands[b]): (c, a)
            for s, b, c, a in wh.execute(
                "select segment, order_days_band, churn_ratio, at_risk_ratio "
                "from marts.segment_churn_definition"
            ).fetchall()
        }
        assert len(want["churn_factors"]) == 9  # 3 countries x 3 bands
        for key, (churn, at_risk) in want["churn_factors"].items():
            assert factors[key] == (pytest.approx(churn), pytest.approx(at_risk)), key
        (cases,) = wh.execute(
            "select cases from marts.signal_backtest "
            "where period = 'all' and segment = 'all' and flag = 'churned'"
        ).fetchone()
        assert cases == want["past_cases"]
        for flag, key in (("churned", "backtest_churned"), ("at_risk", "backtest_at_risk")):
            row = wh.execute(
                "select hits, flagged, lost, cases, flag_precision, flag_recall "
                "from marts.signal_backtest where period = ? and segment = 'all' and flag = ?",
                [BACKTEST_DATE, flag],
            ).fetchone()
            hits, flagged, lost, n = want[key]
            assert row[:4] == (hits, flagged, lost, n), flag
            assert n > 1_000 and flagged > 0 and lost > 0
            assert row[4] == pytest.approx(hits / flagged, abs=1e-12)
            assert row[5] == pytest.approx(hits / lost, abs=1e-12)
    finally:
        wh.close()

    text = kam.kam("evaluate", "--as-of", AS_OF, "--horizon-days", str(HORIZON))
    assert text.returncode == 0 and "| is_churned |" in text.stdout
    assert "| precision | claimed precision | claimed for | recall |" in text.stdout
    if at_risk_claim is not None and score_horizon != HORIZON:
        assert (
            f"claimed precision: for the score's {score_horizon}-day horizon; judging at "
            f"{HORIZON} days is not a test of the claim"
        ) in text.stdout
    assert "the horizon has fully passed" in text.stdout

    other = kam.kam("evaluate", "--as-of", "2011-06-09", "--horizon-days", "183")
    assert other.returncode == 2
    assert "holds as-of 2011-09-09" in other.stderr and "not 2011-06-09" in other.stderr
