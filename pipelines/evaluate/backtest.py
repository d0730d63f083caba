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

    def flag(self, name: str) -> bool | None:
        if name == "churned_or_at_risk":
            return bool(self.is_churned or self.is_at_risk)
        return getattr(self, name)


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
            "flags": {name: score(s) for name, s in self.flags.items()},
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
) -> Evaluation:
    """The measures over ``cases`` (pure: no I/O)."""
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
    )


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


CANDIDATE_NAMES = ("recency", "cadence_rule", "logistic", "gradient_boosting", "blend")


#: the churn model report's columns that say how churn_probability mixes the chosen
#: candidate with recency (pipelines.score.model writes them on every report row)
MIX_COLUMNS = ("recency_weight", "fitted_recency_weight", "lost_share_drift")


def read_candidates(
    work_db: Path, as_of: date
) -> tuple[PublishedScore | None, dict[str, dict[str, float]]]:
    """What churn_probability ranks by (the chosen candidate, mixed with recency or not: the
    chosen report row's :data:`MIX_COLUMNS`) and every candidate's score per client at D,
    from the work DB's ``intermediate.int_clients__churn_model`` when it holds D (else None
    and empty). A work DB built before the mix's columns: the candidate, no mix said."""
    import duckdb

    try:
        con = duckdb.connect(str(work_db), read_only=True)
    except duckdb.Error:
        return None, {}
    try:
        columns = ", ".join(f"candidate_{n}" for n in CANDIDATE_NAMES)
        rows = con.execute(
            f"select client_id, chosen_candidate, {columns} "
            "from intermediate.int_clients__churn_model "
            "where row_kind = 'client' and as_of_date = ?",
            [as_of],
        ).fetchall()
        present = {
            str(name)
            for (name,) in con.execute(
                "select column_name from information_schema.columns where table_schema = "
                "'intermediate' and table_name = 'int_clients__churn_model'"
            ).fetchall()
        }
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
        )
        for s in signals
    ]
    ev = evaluate_cases(cases, as_of, horizon_days, last, run_id)
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
        "| flag | judged | flagged | flagged, no order | no order | precision | recall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(_score_row(name, s) for name, s in ev.flags.items()),
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
