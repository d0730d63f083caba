"""pipelines.evaluate: rank-based AUC (ties averaged), precision/recall of a flag, and the
backtest read from a small hand-made warehouse and work DB (answers computed by hand)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.evaluate import (
    ClientCase,
    EvaluateError,
    HorizonNotPassed,
    average_ranks,
    evaluate,
    evaluate_cases,
    flag_score,
    format_evaluation,
    format_json,
    roc_auc,
    top_at_recall,
)

# --- AUC -------------------------------------------------------------------------------


def test_average_ranks_share_the_mean_rank_of_ties() -> None:
    assert average_ranks([3, 1, 3, 2]) == [3.5, 1.0, 3.5, 2.0]
    assert average_ranks([5, 5, 5]) == [2.0, 2.0, 2.0]
    assert average_ranks([]) == []


def test_auc_with_a_tie_between_a_positive_and_a_negative() -> None:
    # positives score 0.4 and 0.8, negatives 0.1 and 0.4: of the 4 pairs, 3 are ordered
    # right and one is tied (counts 1/2): 3.5 / 4
    assert roc_auc([0.1, 0.4, 0.4, 0.8], [False, True, False, True]) == 0.875


def test_auc_extremes_and_undefined() -> None:
    assert roc_auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert roc_auc([1, 2, 3, 4], [True, True, False, False]) == 0.0
    assert roc_auc([7, 7, 7, 7], [True, False, True, False]) == 0.5
    assert roc_auc([1, 2], [True, True]) is None
    assert roc_auc([], []) is None
    with pytest.raises(ValueError):
        roc_auc([1, 2], [True])


def test_auc_equals_the_pairwise_definition_with_many_ties() -> None:
    scores = [(i * 7) % 5 for i in range(40)]  # values 0..4, each eight times
    positives = [(i * 3) % 4 == 0 or s >= 3 for i, s in enumerate(scores)]
    pos = [s for s, p in zip(scores, positives, strict=True) if p]
    neg = [s for s, p in zip(scores, positives, strict=True) if not p]
    pairs = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg)]
    assert roc_auc(scores, positives) == pytest.approx(sum(pairs) / len(pairs), abs=1e-12)


# --- precision / recall ----------------------------------------------------------------


def test_flag_score_counts_leave_out_not_judged() -> None:
    flags = [True, True, False, None, True, True]
    lost = [True, False, True, True, True, False]
    s = flag_score(flags, lost)
    # judged: all but the 4th; flagged: 1st, 2nd, 5th, 6th; hits: 1st and 5th;
    # lost among the judged: 1st, 3rd, 5th
    assert (s.judged, s.flagged, s.hits, s.positives) == (5, 4, 2, 3)
    assert s.precision == 0.5
    assert s.recall == pytest.approx(2 / 3)


def test_flag_score_without_flags_or_positives_is_undefined_not_zero() -> None:
    s = flag_score([False, False], [True, False])
    assert (s.flagged, s.precision, s.recall) == (0, None, 0.0)
    s = flag_score([True, False], [False, False])
    assert (s.precision, s.recall) == (0.0, None)


# --- the backtest over cases -----------------------------------------------------------


def _case(cid, days, ratio, churned, at_risk, lost, *, drop=None, source="segment_norm"):
    return ClientCase(cid, "EU", source, days, ratio, churned, at_risk, drop, lost)


def test_evaluate_cases_by_hand() -> None:
    cases = [
        _case("a", 100, 4.0, True, False, True),
        _case("b", 90, 3.0, True, False, False, source="own_history"),
        _case("c", 40, 2.0, False, True, True, drop=True),
        _case("d", 10, 0.5, False, False, False, drop=False),
        _case("e", 60, 1.0, False, False, True),
    ]
    ev = evaluate_cases(cases, date(2024, 1, 31), 30, date(2024, 3, 1))
    assert (ev.clients, ev.lost, ev.base_rate) == (5, 3, 0.6)
    assert ev.horizon_end == date(2024, 3, 1) and ev.horizon_passed
    churned = ev.flags["is_churned"]
    assert (churned.flagged, churned.hits, churned.positives) == (2, 1, 3)
    assert ev.flags["churned_or_at_risk"].hits == 2
    assert ev.flags["has_volume_drop"].judged == 2
    # overdue ratio: lost 4.0, 2.0, 1.0 vs kept 3.0, 0.5: pairs right 4.0>3.0, 4.0>0.5,
    # 2.0>0.5, 1.0>0.5 = 4 of 6. Recency: lost 100, 40, 60 vs kept 90, 10: 100>90, 100>10,
    # 40>10, 60>10 = 4 of 6
    assert ev.auc_overdue_ratio == pytest.approx(4 / 6)
    assert ev.auc_recency == pytest.approx(4 / 6)
    by_source = ev.churned_by_interval_source
    assert (by_source["own_history"].flagged, by_source["own_history"].hits) == (1, 0)
    assert (by_source["segment_norm"].flagged, by_source["segment_norm"].hits) == (1, 1)
    text = format_evaluation(ev)
    # no churn model report: no claim, "-" in both claim columns
    assert "| is_churned | 5 | 2 | 1 | 3 | 0.50 | - | - | 0.33 |" in text
    assert "claimed precision" in text and ev.claims == {}
    assert "fully passed" in text
    late = evaluate_cases(cases, date(2024, 1, 31), 30, date(2024, 2, 29))
    assert not late.horizon_passed and "NOT PASSED" in format_evaluation(late)


# --- the precision each flag claims ----------------------------------------------------


def _claimed_cases() -> list[ClientCase]:
    # churned a (lost), b (kept): realized 0.50; at risk c (lost): 1.00; volume drop on c
    return [
        _case("a", 100, 4.0, True, False, True),
        _case("b", 90, 3.0, True, False, False),
        _case("c", 40, 2.0, False, True, True, drop=True),
        _case("d", 10, 0.5, False, False, False, drop=False),
        _case("e", 60, 1.0, False, False, True),
    ]


REPORT = {"horizon_days": 30, "churned_precision": 0.62, "at_risk_precision": 0.41}


def test_the_claimed_precision_beside_the_realized_at_the_scores_horizon() -> None:
    ev = evaluate_cases(_claimed_cases(), AS_OF, 30, date(2024, 3, 1), report=REPORT)
    text = format_evaluation(ev)
    assert "| is_churned | 5 | 2 | 1 | 3 | 0.50 | 0.62 | 30 d | 0.33 |" in text
    assert "| is_at_risk | 5 | 1 | 1 | 3 | 1.00 | 0.41 | 30 d | 0.33 |" in text
    # neither has a claim of its own: the union of two claims, the volume rule
    assert "| churned_or_at_risk | 5 | 3 | 2 | 3 | 0.67 | - | - | 0.67 |" in text
    assert "| has_volume_drop | 2 | 1 | 1 | 1 | 1.00 | - | - | 1.00 |" in text
    # judged at the score's own horizon: whether the claim held, flag by flag
    assert "is_churned: realized 0.50 < claimed 0.62 within 30 days: the claim did not hold" in (
        text
    )
    assert "is_at_risk: realized 1.00 >= claimed 0.41 within 30 days: the claim held" in text
    assert "not a test of the claim" not in text
    flags = json.loads(format_json(ev))["flags"]
    assert (
        flags["is_churned"]["claimed_precision"],
        flags["is_churned"]["claimed_horizon_days"],
    ) == (
        0.62,
        30,
    )
    assert flags["is_churned"]["claim_holds"] is False
    assert flags["is_at_risk"]["claim_holds"] is True
    assert flags["has_volume_drop"]["claimed_precision"] is None
    assert flags["has_volume_drop"]["claim_holds"] is None


def test_another_horizon_is_no_test_of_the_claim() -> None:
    ev = evaluate_cases(_claimed_cases(), AS_OF, 60, date(2024, 4, 1), report=REPORT)
    text = format_evaluation(ev)
    assert "| is_churned | 5 | 2 | 1 | 3 | 0.50 | 0.62 | 30 d | 0.33 |" in text
    line = (
        "claimed precision: for the score's 30-day horizon; judging at 60 days is not a test "
        "of the claim"
    )
    assert text.count(line) == 1
    assert "the claim held" not in text and "did not hold" not in text
    assert json.loads(format_json(ev))["flags"]["is_churned"]["claim_holds"] is None


def test_flags_the_score_did_not_set_claim_nothing() -> None:
    # the cadence rule set the flags: the report has no precision -> "-"
    cadence = {"horizon_days": 30, "churned_precision": None, "at_risk_precision": None}
    ev = evaluate_cases(_claimed_cases(), AS_OF, 30, date(2024, 3, 1), report=cadence)
    assert ev.claims == {}
    assert "| is_churned | 5 | 2 | 1 | 3 | 0.50 | - | - | 0.33 |" in format_evaluation(ev)
    # every churned client flagged by the segment policy: the score's claim is not theirs
    policy = [
        replace(c, flag_source="policy" if c.is_churned else "score") for c in _claimed_cases()
    ]
    ev = evaluate_cases(policy, AS_OF, 30, date(2024, 3, 1), report=REPORT)
    text = format_evaluation(ev)
    assert "| is_churned | 5 | 2 | 1 | 3 | 0.50 | - | - | 0.33 |" in text
    assert "| is_at_risk | 5 | 1 | 1 | 3 | 1.00 | 0.41 | 30 d | 0.33 |" in text
    # one of the two churned by the policy: the claim stands, and the line says whom it
    # does not cover
    mixed = [replace(c, flag_source="policy" if c.client_id == "b" else "score") for c in policy]
    ev = evaluate_cases(mixed, AS_OF, 30, date(2024, 3, 1), report=REPORT)
    text = format_evaluation(ev)
    assert "| is_churned | 5 | 2 | 1 | 3 | 0.50 | 0.62 | 30 d | 0.33 |" in text
    assert "is_churned: 1 of the 2 flagged set by the segment policy or the cadence rule" in text


def test_claims_read_from_the_published_report(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    _warehouse(path)
    con = duckdb.connect(str(path))
    con.execute(
        """
        create table marts.churn_model_report as select * from (values
            ('recency', false, 30, 0.62, 0.41),
            ('logistic', true, 30, 0.62, 0.41),
            ('logistic', true, 30, 0.62, 0.41)
        ) t(candidate, is_chosen, horizon_days, churned_precision, at_risk_precision)
        """
    )
    con.execute("alter table marts.client_churn_signals add column flag_source varchar")
    con.execute("update marts.client_churn_signals set flag_source = 'score'")
    con.close()
    ev = evaluate(str(path), _work_db(tmp_path / "w.duckdb"), AS_OF, 30)
    assert ev.claims["is_churned"].precision == 0.62
    assert ev.claims["is_at_risk"].horizon_days == 30
    assert set(ev.claims) == {"is_churned", "is_at_risk"}
    # a warehouse published before the report: no claim
    old = evaluate(_warehouse(tmp_path / "old.duckdb"), tmp_path / "w.duckdb", AS_OF, 30)
    assert old.claims == {}


# --- reading a warehouse and a work DB -------------------------------------------------

AS_OF = date(2024, 1, 31)


def _warehouse(path: Path, as_of: date = AS_OF) -> str:
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.publish_info as select 'run-1' as run_id, ?::date as as_of_date",
        [as_of],
    )
    con.execute(
        """
        create table marts.client_churn_signals as select * from (values
            ('a', 'EU', 'own_history', 100, 4.0, true, false, null::boolean),
            ('b', 'EU', 'segment_norm', 90, 3.0, true, false, null),
            ('c', 'EU', 'segment_norm', 40, 2.0, false, true, true),
            ('d', 'EU', 'own_history', 10, 0.5, false, false, false),
            ('e', 'EU', 'segment_norm', 60, 1.0, false, false, null),
            ('never', 'EU', 'segment_norm', null, null, false, false, null)
        ) t(client_id, segment, interval_source, days_since_last_order, overdue_ratio,
            is_churned, is_at_risk, has_volume_drop)
        """
    )
    con.close()
    return str(path)


def _work_db(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("create schema raw_erp")
    con.execute(
        """
        create table raw_erp.orders as select order_id, client_id, order_date::date as order_date,
            status from (values
            ('o1', 'a', '2024-01-31', 'completed'),  -- on D: not after D
            ('o2', 'b', '2024-03-01', 'completed'),  -- on D + 30: ordered again
            ('o3', 'c', '2024-03-02', 'completed'),  -- after the horizon
            ('o4', 'd', '2024-02-10', 'completed'),
            ('o5', 'e', '2024-02-11', 'cancelled'),  -- not an order
            ('o6', 'e', '2024-02-12', 'returned'),
            ('o7', 'never', '2024-02-01', 'completed')  -- no order up to D: not counted
        ) t(order_id, client_id, order_date, status)
        """
    )
    con.close()
    return path


def test_evaluate_reads_flags_and_orders_after_d(tmp_path: Path) -> None:
    ev = evaluate(_warehouse(tmp_path / "wh.duckdb"), _work_db(tmp_path / "w.duckdb"), AS_OF, 30)
    # lost: a, c (after the horizon), e (cancelled/returned only); kept: b, d
    assert (ev.clients, ev.lost, ev.warehouse_run_id) == (5, 3, "run-1")
    assert ev.last_data_order_date == date(2024, 3, 2) and ev.horizon_passed
    churned = ev.flags["is_churned"]
    assert (churned.flagged, churned.hits, churned.precision) == (2, 1, 0.5)
    assert ev.auc_overdue_ratio == pytest.approx(4 / 6)
    short = evaluate(str(tmp_path / "wh.duckdb"), tmp_path / "w.duckdb", AS_OF, 29)
    assert short.lost == 4  # b's order on D + 30 is outside a 29-day horizon


def test_evaluate_refuses_a_warehouse_of_another_date(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "wh.duckdb", date(2024, 1, 1))
    with pytest.raises(EvaluateError, match="holds as-of 2024-01-01 .*not 2024-01-31"):
        evaluate(warehouse, _work_db(tmp_path / "w.duckdb"), AS_OF, 30)


def test_evaluate_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(EvaluateError, match="no published warehouse"):
        evaluate(str(tmp_path / "none.duckdb"), tmp_path / "w.duckdb", AS_OF, 30)
    with pytest.raises(EvaluateError, match="no work DB"):
        evaluate(_warehouse(tmp_path / "wh.duckdb"), tmp_path / "none.duckdb", AS_OF, 30)
    with pytest.raises(EvaluateError, match="at least 1"):
        evaluate(str(tmp_path / "wh.duckdb"), tmp_path / "none.duckdb", AS_OF, 0)


def test_churn_probability_auc_by_hand_and_older_warehouses(tmp_path: Path) -> None:
    cases = [
        ClientCase("a", "EU", "segment_norm", 100, 4.0, True, False, None, True, 0.9),
        ClientCase("b", "EU", "own_history", 90, 3.0, True, False, None, False, 0.2),
        ClientCase("c", "EU", "segment_norm", 40, 2.0, False, True, None, True, 0.6),
        ClientCase("d", "EU", "own_history", 10, 0.5, False, False, None, False, 0.6),
        ClientCase("e", "EU", "segment_norm", 60, 1.0, False, False, None, True, None),
    ]
    ev = evaluate_cases(cases, AS_OF, 30, date(2024, 3, 1))
    # with a probability: lost a 0.9, c 0.6 vs kept b 0.2, d 0.6: 0.9>0.2, 0.9>0.6, 0.6>0.2,
    # 0.6=0.6 (1/2) -> 3.5 of 4; e (no probability) is left out of this AUC only
    assert ev.auc_churn_probability == pytest.approx(3.5 / 4)
    assert ev.auc_probability_cases == 4 and ev.clients == 5
    assert "| churn_probability | 0.875 | 4 |" in format_evaluation(ev)
    assert ev.to_dict()["auc_churn_probability"] == pytest.approx(0.875)

    # a warehouse with the column is read; one published before it reads as NULL (above)
    path = tmp_path / "wh.duckdb"
    _warehouse(path)
    con = duckdb.connect(str(path))
    con.execute("alter table marts.client_churn_signals add column churn_probability double")
    con.execute(
        "update marts.client_churn_signals set churn_probability = case client_id "
        "when 'a' then 0.9 when 'b' then 0.2 when 'c' then 0.6 when 'd' then 0.6 end"
    )
    con.close()
    got = evaluate(str(path), _work_db(tmp_path / "w.duckdb"), AS_OF, 30)
    # lost: a, c, e; e has no probability -> the same 3.5 of 4
    assert got.auc_churn_probability == pytest.approx(3.5 / 4)
    old = evaluate(_warehouse(tmp_path / "old.duckdb"), tmp_path / "w.duckdb", AS_OF, 30)
    assert old.auc_churn_probability is None and old.auc_probability_cases == 0


def test_a_horizon_not_passed_is_refused_naming_the_dates(tmp_path: Path) -> None:
    """The data's last order is 2024-03-02 (D + 31): a 40-day horizon ends 2024-03-11, after
    it. Without --partial: refused, naming when D can be judged (data reaching D + 40) and
    the latest as-of date judgeable now (2024-03-02 - 40 days = 2024-01-22)."""
    warehouse, work = _warehouse(tmp_path / "wh.duckdb"), _work_db(tmp_path / "w.duckdb")
    with pytest.raises(HorizonNotPassed) as refused:
        evaluate(warehouse, work, AS_OF, 40)
    exc = refused.value
    assert exc.horizon_end == date(2024, 3, 11)
    assert exc.latest_judgeable == date(2024, 1, 22)
    assert "ends 2024-03-11, the data's last order date is 2024-03-02" in str(exc)
    assert "the latest as-of date judgeable now is 2024-01-22" in str(exc)
    # asked for explicitly: the partial judgement, saying what it is
    ev = evaluate(warehouse, work, AS_OF, 40, partial=True)
    assert not ev.horizon_passed
    assert "NOT PASSED (partial judgement, --partial)" in format_evaluation(ev)
    # exactly D + H = the last order date has passed
    assert evaluate(warehouse, work, AS_OF, 31).horizon_passed


def _churn_model(
    work: Path,
    chosen: str,
    mix: tuple[float | None, float | None, bool | None] = (None, None, None),
    *,
    mix_columns: bool = True,
) -> None:
    """The work DB's churn model rows of D: each client's candidate scores (the chosen
    candidate ranks a, c above b, d: AUC 1 on a, b, c, d) and the chosen report row with
    the recency mix's columns (recency_weight, fitted_recency_weight, lost_share_drift;
    ``mix_columns`` False: a work DB built before they existed, and before
    candidate_logistic_rfm, churn-score-10)."""
    mixed = (
        "?::double as recency_weight, ?::double as fitted_recency_weight, "
        "?::boolean as lost_share_drift, null::double as candidate_logistic_rfm, "
        if mix_columns
        else ""
    )
    con = duckdb.connect(str(work))
    con.execute("create schema intermediate")
    con.execute(
        f"""
        create table intermediate.int_clients__churn_model as
        select 'report' as row_kind, ?::date as as_of_date, null::varchar as client_id,
            null::varchar as chosen_candidate, null::double as candidate_recency,
            null::double as candidate_cadence_rule, null::double as candidate_logistic,
            null::double as candidate_gradient_boosting, null::double as candidate_blend,
            {mixed} true as is_chosen, 'why: prose, never parsed' as why
        """,
        [AS_OF, *(mix if mix_columns else ())],
    )
    con.execute(
        """
        insert into intermediate.int_clients__churn_model by name
        select 'client' as row_kind, ?::date as as_of_date, client_id, ? as chosen_candidate,
            days as candidate_recency, learned as candidate_logistic, false as is_chosen
        from (values ('a', 100.0, 0.9), ('b', 90.0, 0.1), ('c', 40.0, 0.8), ('d', 10.0, 0.2))
            t(client_id, days, learned)
        """,
        [AS_OF, chosen],
    )
    con.close()


def test_evaluate_says_what_churn_probability_publishes(tmp_path: Path) -> None:
    """The chosen candidate's line is its own AUC; when recency's weight is above 0 the
    published churn_probability is the mix, and the report says so with the weight (read
    from the chosen report row's columns, not from its prose)."""
    warehouse = _warehouse(tmp_path / "wh.duckdb")
    work = _work_db(tmp_path / "w.duckdb")
    _churn_model(work, "logistic", (0.5, 0.12, True))
    ev = evaluate(warehouse, work, AS_OF, 30)
    # lost a, c (e has no candidate score); logistic 0.9, 0.8 vs 0.1, 0.2: AUC 1
    assert ev.candidate_aucs["logistic"] == pytest.approx(1.0)
    assert ev.chosen_candidate == "logistic"
    assert ev.published is not None
    assert (ev.published.recency_weight, ev.published.fitted_recency_weight) == (0.5, 0.12)
    assert ev.published.drift is True
    text = format_evaluation(ev)
    assert "| candidate logistic (chosen) | 1.000 | 4 |" in text
    assert "published: logistic mixed with recency (weight 0.50, fitted 0.12, drift)" in text
    got = ev.to_dict()["published"]
    assert got == {
        "candidate": "logistic",
        "recency_weight": 0.5,
        "fitted_recency_weight": 0.12,
        "drift": True,
    }

    # weight 0: the learned model alone; a simple score chosen: no mix to report; a work DB
    # built before the mix's columns: the candidate, nothing said of a mix
    for name, mix, columns, says in [
        ("logistic", (0.0, 0.0, False), True, "published: logistic alone (recency's weight "),
        ("recency", (None, None, None), True, "published: recency"),
        ("logistic", (None, None, None), False, "published: logistic"),
    ]:
        other = tmp_path / f"{name}-{columns}.duckdb"
        _work_db(other)
        _churn_model(other, name, mix, mix_columns=columns)
        ev = evaluate(warehouse, other, AS_OF, 30)
        assert ev.published is not None and not ev.published.mixed
        assert ev.chosen_candidate == name
        assert ev.candidate_aucs["logistic"] == pytest.approx(1.0)
        assert says in format_evaluation(ev)
        assert "mixed with recency" not in format_evaluation(ev)
    assert "published: logistic alone (recency's weight 0.00, no drift)" in format_evaluation(
        evaluate(warehouse, tmp_path / "logistic-True.duckdb", AS_OF, 30)
    )
    # a work DB without the churn model: no candidates, nothing said
    assert evaluate(warehouse, _work_db(tmp_path / "bare.duckdb"), AS_OF, 30).published is None


def test_a_weight_below_half_a_hundredth_is_not_printed_as_zero() -> None:
    """Recency's weight 0.003 (fitted 0.0004) is printed with the digits that tell it from
    0 (two decimals said 0.00, as if the learned model ranked alone); 0.996 is not 1.00."""
    from pipelines.evaluate.backtest import PublishedScore

    text = PublishedScore("blend", 0.003, 0.0004, False).describe()
    assert "mixed with recency (weight 0.003, fitted 0.0004, no drift)" in text
    assert "weight 0.996," in PublishedScore("blend", 0.996, 0.996, False).describe()
    assert "recency's weight 0.00," in PublishedScore("blend", 0.0, 0.0, False).describe()


# --- precision at recall 0.50 ----------------------------------------------------------


def test_top_at_recall_takes_the_smallest_top_k_and_the_ties_at_the_cut() -> None:
    # high to low: 0.9 lost | 0.8 kept, 0.8 lost (tied) | 0.7 kept | 0.5 lost | 0.3 lost
    # | 0.2 kept. 4 lost, recall 0.50 needs 2: the top 1 holds 1, the tie at 0.8 brings the
    # 2nd; it is taken whole (k = 3, not 2): precision 2/3, recall 2/4
    s = top_at_recall(
        [0.5, 0.8, 0.9, 0.2, 0.7, 0.8, 0.3], [True, False, True, False, False, True, True]
    )
    assert s is not None
    assert (s.judged, s.flagged, s.hits, s.positives) == (7, 3, 2, 4)
    assert s.precision == pytest.approx(2 / 3) and s.recall == 0.5
    # a tie wider than needed is still taken whole: 1 of 2 lost is in the top 0.9 tie of 3
    s = top_at_recall([0.9, 0.9, 0.9, 0.1], [True, False, False, True])
    assert (s.flagged, s.hits, s.precision) == (3, 1, pytest.approx(1 / 3))
    # recall reached exactly, no tie: 3 lost need 1.5 -> 2; the top 3 hold them
    s = top_at_recall([4, 3, 2, 1], [True, False, True, True])
    assert (s.flagged, s.hits, s.recall) == (3, 2, pytest.approx(2 / 3))
    assert top_at_recall([1, 2], [False, False]) is None
    with pytest.raises(ValueError):
        top_at_recall([1, 2], [True])


def test_kam_evaluate_prints_precision_at_recall_50() -> None:
    cases = [
        ClientCase("a", "EU", "segment_norm", 100, 4.0, True, False, None, True, 0.9),
        ClientCase("b", "EU", "own_history", 90, 3.0, True, False, None, False, 0.7),
        ClientCase("c", "EU", "segment_norm", 40, 2.0, False, True, None, True, 0.6),
        ClientCase("d", "EU", "own_history", 10, 0.5, False, False, None, False, 0.6),
        ClientCase("e", "EU", "segment_norm", 60, 1.0, False, False, None, True, 0.1),
        ClientCase("f", "EU", "segment_norm", 5, 1.0, False, False, None, True, None),
    ]
    ev = evaluate_cases(cases, AS_OF, 30, date(2024, 3, 1))
    # churn_probability (f has none): lost a, c, e of 5; 2 needed: a 0.9 (1), b 0.7 (1),
    # c and d tied at 0.6 (2) -> top 4, precision 2/4, recall 2/3
    probability = ev.at_recall["churn_probability"]
    assert (probability.judged, probability.flagged, probability.hits) == (5, 4, 2)
    # recency (all 6): lost a, c, e, f; 2 needed: a 100 (1), b 90 (1), e 60 (2) -> top 3,
    # precision 2/3, recall 2/4
    recency = ev.at_recall["recency"]
    assert (recency.judged, recency.flagged, recency.hits, recency.positives) == (6, 3, 2, 4)
    text = format_evaluation(ev)
    assert "precision at recall 0.50" in text
    assert "| churn_probability | 5 | 4 | 2 | 3 | 0.50 | 0.67 |" in text
    assert "| recency | 6 | 3 | 2 | 4 | 0.67 | 0.50 |" in text
    got = json.loads(format_json(ev))["precision_at_recall_50"]
    assert got["churn_probability"]["precision"] == 0.5
    assert got["recency"]["flagged"] == 3 and got["recency"]["precision"] == pytest.approx(2 / 3)
