"""How often the churn flags of one as-of date were right: the flags published for D,
judged by what each client did in the ``H`` days after D.

* Flags: ``marts.client_churn_signals`` of the published warehouse, which must hold D
  (``marts.publish_info.as_of_date``). A client counts when it had a completed order up
  to D (``days_since_last_order`` not NULL: the mart's own "has ordered"; a client whose
  only orders were cancelled or returned is not judged by the mart and is left out).
* Outcome: the work DB's raw layer (``raw_erp.orders``, never cut at an as-of date): a
  client is *lost* (the positive class) when it has no completed order with
  ``order_date`` in ``(D, D + H]``.
* Measures: ROC AUC of ``churn_probability`` (the share of comparable past cases that did
  not order again; absent from warehouses published before it existed), of
  ``overdue_ratio`` and of plain recency (``days_since_last_order``) for "lost";
  precision at recall 0.50 of ``churn_probability`` and of recency ranked high to low
  (the smallest top k whose recall of "lost" reaches 0.50, clients tied at the cut
  included; precision among those k: issue 20's target);
  precision (lost among flagged) and recall (flagged among lost) of
  ``is_churned``, ``is_at_risk``, either of them, and ``has_volume_drop`` (judged clients
  only: NULL = not judged); the base rate; whether the horizon has fully passed (the
  data's last order date, any status, is at or after D + H; if not, "lost" is overstated).
* Claims: beside each flag's realized precision, the precision the pipeline published for
  it (``marts.churn_model_report``'s ``churned_precision`` / ``at_risk_precision``: the
  lower end of a one-sided 95 % Wilson range, churn-score-7/8) and the horizon it is
  claimed for (the report's ``horizon_days``); only for flags the churn score set
  (``client_churn_signals.flag_source = 'score'``), "-" for the others. Judged at another
  horizon than the score's, the figures are no test of the claim.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipelines.evaluate.metrics import FlagScore, flag_score, roc_auc, top_at_recall
from pipelines.publish.read import read_warehouse
from pipelines.score.measures import weight_text
from pipelines.score.settings import CANDIDATES
from pipelines.secrets import mask_url

SIGNAL_COLUMNS = (
    "client_id",
    "segment",
    "interval_source",
    "days_since_last_order",
    "overdue_ratio",
    "is_churned",
    "is_at_risk",
    "has_volume_drop",
    "churn_probability",
    "flag_source",
)

# name shown -> how it is read from a case
FLAGS = ("is_churned", "is_at_risk", "churned_or_at_risk", "has_volume_drop")

#: the recall at which a ranking's precision is read (issue 20: "churned precision above
#: 0.65 at recall >= 0.50" on Online Retail 2011-09-09)
AT_RECALL = 0.5


class EvaluateError(Exception):
    """The evaluation cannot be made (warehouse or work DB absent, another as-of date)."""


class HorizonNotPassed(EvaluateError):
    """The data does not reach D + H yet: every client that has not ordered *so far* would
    count as lost, and the figures would look perfect while meaning nothing. Raised unless a
    partial judgement is asked for; says when D can be judged and which date can be now."""

    def __init__(self, as_of: date, horizon_days: int, last_data_order_date: date | None):
        self.as_of = as_of
        self.horizon_days = horizon_days
        self.horizon_end = as_of + timedelta(days=horizon_days)
        self.last_data_order_date = last_data_order_date
        #: the latest as-of date whose horizon the data has passed (None: no order at all)
        self.latest_judgeable = (
            None
            if last_data_order_date is None
            else last_data_order_date - timedelta(days=horizon_days)
        )
        last = last_data_order_date.isoformat() if last_data_order_date else "none"
        super().__init__(
            f"the {horizon_days}-day horizon after {as_of.isoformat()} has not passed: it "
            f"ends {self.horizon_end.isoformat()}, the data's last order date is {last}, so "
            f"{as_of.isoformat()} can be judged from data reaching "
            f"{self.horizon_end.isoformat()}"
            + (
                f"; the latest as-of date judgeable now is {self.latest_judgeable.isoformat()}"
                if self.latest_judgeable
                else ""
            )
        )


@dataclass(frozen=True)
class ClientCase:
    client_id: str
    segment: str | None
    interval_source: str | None
    days_since_last_order: int
    overdue_ratio: float | None
    is_churned: bool
    is_at_risk: bool
    has_volume_drop: bool | None
    lost: bool  # no completed order in (D, D + H]
    churn_probability: float | None = None
    #: who set the flags (score, policy, cadence_rule, not_judged); None: not published
    flag_source: str | None = None

    def flag(self, name: str) -> bool | None:
        if name == "churned_or_at_risk":
            return bool(self.is_churned or self.is_at_risk)
        return getattr(self, name)


#: flag -> the churn model report's column with the precision published for it
CLAIM_COLUMNS = {"is_churned": "churned_precision", "is_at_risk": "at_risk_precision"}


@dataclass(frozen=True)
class Claim:
    """The precision the pipeline published for a flag (the lower end of its one-sided 95 %
    Wilson range on the score's validation windows) and the horizon it is claimed for."""

    precision: float
    horizon_days: int
    #: flagged clients the score did not flag (segment policy, cadence rule): no claim
    #: covers them, yet the realized precision counts them
    unclaimed_flagged: int = 0


@dataclass(frozen=True)
class PublishedScore:
    """What churn_probability ranks by: the chosen candidate, mixed with recency when its
    weight is above 0 (docs/rules.md "Recency mix"); the candidate's own AUC then differs
    from churn_probability's."""

    candidate: str
    #: recency's weight in the mix (None: no mix, a simple score or a report before it);
    #: the churn model report's recency_weight, fitted_recency_weight, lost_share_drift
    recency_weight: float | None = None
    fitted_recency_weight: float | None = None
    drift: bool | None = None

    @property
    def mixed(self) -> bool:
        return bool(self.recency_weight)

    def describe(self) -> str:
        if self.recency_weight is None:
            return f"published: {self.candidate}"
        drift = "drift" if self.drift else "no drift"
        if not self.mixed:
            return (
                f"published: {self.candidate} alone (recency's weight "
                f"{weight_text(self.recency_weight)}, {drift}): churn_probability ranks as "
                "it does"
            )
        return (
            f"published: {self.candidate} mixed with recency (weight "
            f"{weight_text(self.recency_weight)}, fitted "
            f"{weight_text(self.fitted_recency_weight or 0.0)}, {drift}): "
            "churn_probability's AUC is the mix's, not the chosen candidate's"
        )


@dataclass(frozen=True)
class Evaluation:
    as_of: date
    horizon_days: int
    last_data_order_date: date | None
    warehouse_run_id: str | None
    clients: int
    lost: int
    auc_overdue_ratio: float | None
    auc_recency: float | None
    auc_cases: int  # clients with an overdue ratio (the recency AUC uses all clients)
    auc_churn_probability: float | None = None
    auc_probability_cases: int = 0  # clients with a churn probability
    flags: dict[str, FlagScore] = field(default_factory=dict)
    #: ranking name -> its top k at recall AT_RECALL (None: no lost client to recall)
    at_recall: dict[str, FlagScore | None] = field(default_factory=dict)
    churned_by_interval_source: dict[str, FlagScore] = field(default_factory=dict)
    #: each churn score candidate's AUC on the same clients (work DB's
    #: intermediate.int_clients__churn_model of the same as-of), and the chosen one
    candidate_aucs: dict[str, float | None] = field(default_factory=dict)
    candidate_cases: int = 0
    published: PublishedScore | None = None
    #: flag -> the precision published for it (absent: no claim, "-")
    claims: dict[str, Claim] = field(default_factory=dict)

    def claim_holds(self, name: str) -> bool | None:
        """Realized precision >= claimed, when judged at the score's own horizon (else
        None: another horizon is no test of the claim) and something was flagged."""
        claim, s = self.claims.get(name), self.flags.get(name)
        if claim is None or s is None or s.precision is None:
            return None
        if claim.horizon_days != self.horizon_days:
            return None
        return s.precision >= claim.precision

    @property
    def chosen_candidate(self) -> str | None:
        return self.published.candidate if self.published else None

    @property
    def horizon_end(self) -> date:
        return self.as_of + timedelta(days=self.horizon_days)

    @property
    def horizon_passed(self) -> bool:
        return self.last_data_order_date is not None and (
            self.last_data_order_date >= self.horizon_end
        )

    @property
    def base_rate(self) -> float | None:
        return self.lost / self.clients if self.clients else None

    def to_dict(self) -> dict[str, Any]:
        def score(s: FlagScore) -> dict[str, Any]:
            return {**asdict(s), "precision": s.precision, "recall": s.recall}

        return {
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "horizon_end": self.horizon_end.isoformat(),
            "last_data_order_date": (
                self.last_data_order_date.isoformat() if self.last_data_order_date else None
            ),
            "horizon_passed": self.horizon_passed,
            "warehouse_run_id": self.warehouse_run_id,
            "clients": self.clients,
            "lost": self.lost,
            "base_rate": self.base_rate,
            "auc_churn_probability": self.auc_churn_probability,
            "auc_probability_cases": self.auc_probability_cases,
            "auc_overdue_ratio": self.auc_overdue_ratio,
            "auc_recency": self.auc_recency,
            "auc_cases": self.auc_cases,
            "flags": {
                name: {
                    **score(s),
                    "claimed_precision": (
                        self.claims[name].precision if name in self.claims else None
                    ),
                    "claimed_horizon_days": (
                        self.claims[name].horizon_days if name in self.claims else None
                    ),
                    "claim_holds": self.claim_holds(name),
                }
                for name, s in self.flags.items()
            },
            "precision_at_recall_50": {
                name: score(s) if s else None for name, s in self.at_recall.items()
            },
            "churned_by_interval_source": {
                name: score(s) for name, s in self.churned_by_interval_source.items()
            },
            "candidate_aucs": self.candidate_aucs,
            "candidate_cases": self.candidate_cases,
            "chosen_candidate": self.chosen_candidate,
            "published": asdict(self.published) if self.published else None,
        }


def evaluate_cases(
    cases: Sequence[ClientCase],
    as_of: date,
    horizon_days: int,
    last_data_order_date: date | None,
    warehouse_run_id: str | None = None,
    report: dict[str, Any] | None = None,
) -> Evaluation:
    """The measures over ``cases`` (pure: no I/O); ``report``: the churn model report's
    chosen row (``horizon_days`` and :data:`CLAIM_COLUMNS`), the claims' source."""
    lost = [c.lost for c in cases]
    with_ratio = [c for c in cases if c.overdue_ratio is not None]
    with_probability = [c for c in cases if c.churn_probability is not None]
    sources = sorted({c.interval_source or "unknown" for c in cases})
    return Evaluation(
        as_of=as_of,
        horizon_days=horizon_days,
        last_data_order_date=last_data_order_date,
        warehouse_run_id=warehouse_run_id,
        clients=len(cases),
        lost=sum(lost),
        auc_overdue_ratio=roc_auc(
            [c.overdue_ratio for c in with_ratio], [c.lost for c in with_ratio]
        ),
        auc_recency=roc_auc([float(c.days_since_last_order) for c in cases], lost),
        auc_cases=len(with_ratio),
        auc_churn_probability=roc_auc(
            [c.churn_probability for c in with_probability], [c.lost for c in with_probability]
        ),
        auc_probability_cases=len(with_probability),
        flags={name: flag_score([c.flag(name) for c in cases], lost) for name in FLAGS},
        at_recall={
            "churn_probability": top_at_recall(
                [c.churn_probability for c in with_probability],
                [c.lost for c in with_probability],
                AT_RECALL,
            ),
            "recency": top_at_recall(
                [float(c.days_since_last_order) for c in cases], lost, AT_RECALL
            ),
        },
        churned_by_interval_source={
            source: flag_score(
                [c.is_churned for c in cases if (c.interval_source or "unknown") == source],
                [c.lost for c in cases if (c.interval_source or "unknown") == source],
            )
            for source in sources
        },
        claims=flag_claims(cases, report),
    )


def flag_claims(cases: Sequence[ClientCase], report: dict[str, Any] | None) -> dict[str, Claim]:
    """The precision published for each flag the churn score set. None when the report has
    no precision for it (no level reached, the cadence rule set the flags, a warehouse
    before the score), or when none of the flagged clients was flagged by the score (the
    segment policy's or the cadence rule's flags claim nothing)."""
    if not report or report.get("horizon_days") is None:
        return {}
    claims: dict[str, Claim] = {}
    for name, column in CLAIM_COLUMNS.items():
        precision = report.get(column)
        if precision is None:
            continue
        flagged = [c for c in cases if c.flag(name)]
        # flag_source None: a warehouse without it, where the score set every flag it claims
        unclaimed = sum(1 for c in flagged if c.flag_source not in (None, "score"))
        if flagged and unclaimed == len(flagged):
            continue
        claims[name] = Claim(float(precision), int(report["horizon_days"]), unclaimed)
    return claims


# --- reading the warehouse and the work DB ---------------------------------------------


def _fetch_warehouse(warehouse: str, queries: Sequence[str]) -> list[list[tuple]]:
    """Rows of each query against the published warehouse (read-only, errors masked)."""
    results = read_warehouse(
        warehouse, queries, error=EvaluateError, application_name="kam-evaluate"
    )
    return [result.rows for result in results]


def read_signals(warehouse: str, as_of: date) -> tuple[str | None, list[dict[str, Any]]]:
    """The published run id and the churn signals of the clients with an order up to D.

    Refuses a warehouse that holds another as-of date, naming the date it holds.
    """
    (present,) = _fetch_warehouse(
        warehouse,
        [
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'client_churn_signals'"
        ],
    )
    names = {str(name) for (name,) in present}
    # a warehouse published before churn_probability existed: read it as NULL
    selected = [c if c in names or not names else f"null as {c}" for c in SIGNAL_COLUMNS]
    info, rows = _fetch_warehouse(
        warehouse,
        [
            "select run_id, as_of_date from marts.publish_info",
            f"select {', '.join(selected)} from marts.client_churn_signals "
            "where days_since_last_order is not null",
        ],
    )
    if not info:
        raise EvaluateError(f"the warehouse {mask_url(warehouse)} has no publish_info row")
    run_id, held = info[0]
    held = held if isinstance(held, date) else date.fromisoformat(str(held)[:10])
    if held != as_of:
        raise EvaluateError(
            f"the warehouse {mask_url(warehouse)} holds as-of {held.isoformat()} "
            f"(run {run_id}), not {as_of.isoformat()}: run `kam run --as-of "
            f"{as_of.isoformat()}{' --allow-older' if as_of < held else ''}` first, or point "
            "KAM_WAREHOUSE / KAM_DATA_DIR at a "
            f"warehouse published for {as_of.isoformat()}"
        )
    return run_id, [dict(zip(SIGNAL_COLUMNS, row, strict=True)) for row in rows]


def read_claims(warehouse: str) -> dict[str, Any] | None:
    """The churn model report's chosen row: the score's ``horizon_days`` and the precision
    published for each flag (:data:`CLAIM_COLUMNS`). None when the warehouse has no report
    (published before the churn score) or no chosen row."""
    wanted = ("horizon_days", *CLAIM_COLUMNS.values())
    (present,) = _fetch_warehouse(
        warehouse,
        [
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'churn_model_report'"
        ],
    )
    names = {str(name) for (name,) in present}
    if not names or "is_chosen" not in names:
        return None
    selected = [c if c in names else f"null as {c}" for c in wanted]
    (rows,) = _fetch_warehouse(
        warehouse,
        [f"select {', '.join(selected)} from marts.churn_model_report where is_chosen limit 1"],
    )
    return dict(zip(wanted, rows[0], strict=True)) if rows else None


def read_outcomes(work_db: Path, as_of: date, horizon_days: int) -> tuple[set[str], date | None]:
    """Clients with a completed order in (D, D + H], and the data's last order date (any
    status), from the work DB's raw layer."""
    import duckdb

    if not work_db.is_file():
        raise EvaluateError(
            f"no work DB at {work_db} (KAM_DATA_DIR): the orders after D are read from its "
            "raw layer; run `kam run` on this data folder first"
        )
    try:
        con = duckdb.connect(str(work_db), read_only=True)
    except duckdb.Error as exc:
        raise EvaluateError(
            f"the work DB {work_db} cannot be opened (is a kam run writing it?): {exc}"
        ) from None
    end = as_of + timedelta(days=horizon_days)
    try:
        ordered = con.execute(
            "select distinct trim(client_id) from raw_erp.orders "
            "where trim(status) = 'completed' "
            "and cast(order_date as date) > ? and cast(order_date as date) <= ?",
            [as_of, end],
        ).fetchall()
        (last,) = con.execute("select max(cast(order_date as date)) from raw_erp.orders").fetchone()
    except duckdb.Error as exc:
        raise EvaluateError(f"the work DB {work_db} cannot be read: {exc}") from None
    finally:
        con.close()
    return {client_id for (client_id,) in ordered}, last


#: the churn score's candidates, in the report's order (their `candidate_<name>` columns)
CANDIDATE_NAMES = CANDIDATES


#: the churn model report's columns that say how churn_probability mixes the chosen
#: candidate with recency (pipelines.score.model writes them on every report row)
MIX_COLUMNS = ("recency_weight", "fitted_recency_weight", "lost_share_drift")


def read_candidates(
    work_db: Path, as_of: date
) -> tuple[PublishedScore | None, dict[str, dict[str, float]]]:
    """What churn_probability ranks by (the chosen candidate, mixed with recency or not: the
    chosen report row's :data:`MIX_COLUMNS`) and every candidate's score per client at D,
    from the work DB's ``intermediate.int_clients__churn_model`` when it holds D (else None
    and empty). A work DB built before the mix's columns: the candidate, no mix said; before
    a candidate's column: that candidate has no scores."""
    import duckdb

    try:
        con = duckdb.connect(str(work_db), read_only=True)
    except duckdb.Error:
        return None, {}
    try:
        present = {
            str(name)
            for (name,) in con.execute(
                "select column_name from information_schema.columns where table_schema = "
                "'intermediate' and table_name = 'int_clients__churn_model'"
            ).fetchall()
        }
        # a work DB built before a candidate existed (logistic_rfm: churn-score-10) has no
        # column for it: NULL, the others still read
        columns = ", ".join(
            c if c in present else f"null as {c}"
            for c in (f"candidate_{n}" for n in CANDIDATE_NAMES)
        )
        rows = con.execute(
            f"select client_id, chosen_candidate, {columns} "
            "from intermediate.int_clients__churn_model "
            "where row_kind = 'client' and as_of_date = ?",
            [as_of],
        ).fetchall()
        selected = [c if c in present else f"null as {c}" for c in MIX_COLUMNS]
        mixes = con.execute(
            f"select {', '.join(selected)} from intermediate.int_clients__churn_model "
            "where row_kind = 'report' and is_chosen and as_of_date = ? limit 1",
            [as_of],
        ).fetchall()
    except duckdb.Error:
        return None, {}  # a work DB built before the churn score existed
    finally:
        con.close()
    published = None
    if rows and rows[0][1] is not None:
        w, fitted, drift = mixes[0] if mixes else (None, None, None)
        published = PublishedScore(
            str(rows[0][1]),
            None if w is None else float(w),
            None if fitted is None else float(fitted),
            None if drift is None else bool(drift),
        )
    scores: dict[str, dict[str, float]] = {}
    for row in rows:
        for name, value in zip(CANDIDATE_NAMES, row[2:], strict=True):
            if value is not None:
                scores.setdefault(name, {})[str(row[0])] = float(value)
    return published, scores


def evaluate(
    warehouse: str, work_db: Path, as_of: date, horizon_days: int, *, partial: bool = False
) -> Evaluation:
    """Read the flags for D and the orders after D, and measure. A horizon the data has not
    passed raises :class:`HorizonNotPassed` unless ``partial`` (then the report says so)."""
    if horizon_days < 1:
        raise EvaluateError(f"--horizon-days must be at least 1, not {horizon_days}")
    run_id, signals = read_signals(warehouse, as_of)
    ordered, last = read_outcomes(work_db, as_of, horizon_days)
    if not partial and (last is None or last < as_of + timedelta(days=horizon_days)):
        raise HorizonNotPassed(as_of, horizon_days, last)
    cases = [
        ClientCase(
            client_id=s["client_id"],
            segment=s["segment"],
            interval_source=s["interval_source"],
            days_since_last_order=int(s["days_since_last_order"]),
            overdue_ratio=None if s["overdue_ratio"] is None else float(s["overdue_ratio"]),
            is_churned=bool(s["is_churned"]),
            is_at_risk=bool(s["is_at_risk"]),
            has_volume_drop=s["has_volume_drop"],
            lost=s["client_id"] not in ordered,
            churn_probability=(
                None if s["churn_probability"] is None else float(s["churn_probability"])
            ),
            flag_source=s["flag_source"],
        )
        for s in signals
    ]
    ev = evaluate_cases(cases, as_of, horizon_days, last, run_id, read_claims(warehouse))
    published, candidates = read_candidates(work_db, as_of)
    aucs: dict[str, float | None] = {}
    counted = 0
    for name in CANDIDATE_NAMES:
        if name not in candidates:
            continue
        judged = [c for c in cases if c.client_id in candidates[name]]
        counted = max(counted, len(judged))
        aucs[name] = roc_auc(
            [candidates[name][c.client_id] for c in judged], [c.lost for c in judged]
        )
    return replace(
        ev,
        candidate_aucs=aucs,
        candidate_cases=counted,
        published=published,
    )


# --- printing ----------------------------------------------------------------------------


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _score_row(name: str, s: FlagScore) -> str:
    return (
        f"| {name} | {s.judged:,} | {s.flagged:,} | {s.hits:,} | {s.positives:,} "
        f"| {_num(s.precision)} | {_num(s.recall)} |"
    )


def _flag_row(name: str, s: FlagScore, claim: Claim | None) -> str:
    claimed = (
        "| - | - |" if claim is None else f"| {claim.precision:.2f} | {claim.horizon_days} d |"
    )
    return (
        f"| {name} | {s.judged:,} | {s.flagged:,} | {s.hits:,} | {s.positives:,} "
        f"| {_num(s.precision)} {claimed} {_num(s.recall)} |"
    )


def _claim_lines(ev: Evaluation) -> list[str]:
    """What the claims say against the realized precision: one line when judged at another
    horizon than the score's, else one per claimed flag."""
    if not ev.claims:
        return []
    horizons = sorted({c.horizon_days for c in ev.claims.values()})
    lines = [""]
    if horizons != [ev.horizon_days]:
        lines.append(
            f"claimed precision: for the score's {', '.join(map(str, horizons))}-day horizon; "
            f"judging at {ev.horizon_days} days is not a test of the claim"
        )
    else:
        for name, claim in ev.claims.items():
            s = ev.flags[name]
            if s.precision is None:
                lines.append(f"{name}: nobody flagged, the claim {claim.precision:.2f} untested")
                continue
            held = ev.claim_holds(name)
            lines.append(
                f"{name}: realized {_num(s.precision)} "
                f"{'>=' if held else '<'} claimed {claim.precision:.2f} within "
                f"{claim.horizon_days} days: the claim "
                f"{'held' if held else 'did not hold'}"
            )
    for name, claim in ev.claims.items():
        if claim.unclaimed_flagged:
            lines.append(
                f"{name}: {claim.unclaimed_flagged:,} of the {ev.flags[name].flagged:,} "
                "flagged set by the segment policy or the cadence rule, not the score: the "
                "claim does not cover them, the realized precision counts them"
            )
    return lines


def format_evaluation(ev: Evaluation) -> str:
    """The report `kam evaluate` prints (Markdown tables, so it pastes into docs)."""
    start = ev.as_of + timedelta(days=1)
    last = ev.last_data_order_date.isoformat() if ev.last_data_order_date else "none"
    if ev.horizon_passed:
        passed = f"the data's last order date is {last}: the horizon has fully passed"
    else:
        passed = (
            f"NOT PASSED (partial judgement, --partial): the data's last order date is "
            f"{last}, before {ev.horizon_end.isoformat()}; clients may yet order, 'lost' is "
            "overstated and precision with it"
        )
    lines = [
        f"as of {ev.as_of.isoformat()}, outcome: no completed order within {ev.horizon_days} "
        f"days ({start.isoformat()} .. {ev.horizon_end.isoformat()})",
        f"horizon: {passed}",
        f"clients with an order up to D: {ev.clients:,}; no order within the horizon: "
        f"{ev.lost:,} (base rate {_num(ev.base_rate, 3)})",
        "",
        "| ranking of 'no order' | ROC AUC | clients |",
        "| --- | ---: | ---: |",
        f"| churn_probability | {_num(ev.auc_churn_probability, 3)} "
        f"| {ev.auc_probability_cases:,} |",
        f"| overdue_ratio | {_num(ev.auc_overdue_ratio, 3)} | {ev.auc_cases:,} |",
        f"| days since last order (recency) | {_num(ev.auc_recency, 3)} | {ev.clients:,} |",
        *(
            f"| candidate {name}{' (chosen)' if name == ev.chosen_candidate else ''} "
            f"| {_num(auc, 3)} | {ev.candidate_cases:,} |"
            for name, auc in ev.candidate_aucs.items()
        ),
        *(["", ev.published.describe()] if ev.published and ev.candidate_aucs else []),
        "",
        f"precision at recall {AT_RECALL:.2f}: the ranking's smallest top k (highest first) "
        f"whose recall reaches {AT_RECALL:.2f}, clients tied at the cut included",
        "",
        "| ranking | clients | top k | top k, no order | no order | precision | recall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            _score_row(name, s) if s else f"| {name} | - | - | - | 0 | - | - |"
            for name, s in ev.at_recall.items()
        ),
        "",
        "| flag | judged | flagged | flagged, no order | no order | precision "
        "| claimed precision | claimed for | recall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(_flag_row(name, s, ev.claims.get(name)) for name, s in ev.flags.items()),
        *_claim_lines(ev),
        "",
        "is_churned by interval_source:",
        "",
        "| interval_source | clients | flagged | flagged, no order | no order "
        "| precision | recall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(_score_row(name, s) for name, s in ev.churned_by_interval_source.items()),
    ]
    return "\n".join(lines)


def format_json(ev: Evaluation) -> str:
    return json.dumps(ev.to_dict(), indent=2)
