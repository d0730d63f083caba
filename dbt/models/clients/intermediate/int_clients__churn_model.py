"""The churn score of D's clients and its report (docs/rules.md "Churn score").

A dbt Python model, run by dbt-duckdb inside the one `dbt build` (so the build order,
partial parsing, backfills and the Dagster graph stay as they are): it reads the features
(int_clients__score_features) and the settings (int_clients__score_settings), and hands
them to pipelines.score, which fits, judges, chooses and calibrates the candidates.

One table, two kinds of rows (row_kind): 'client' (one per client of D: churn_probability,
the score's flags and the levels behind them) and 'report' (one per candidate and
validation window); int_clients__churn_probability and marts.churn_model_report read them.
"""

import re
import time
import warnings
from collections.abc import Callable

import duckdb
import pandas as pd

#: DuckDB's share of its memory limit from this model on, for the rest of the dbt process:
#: the model's pandas / scikit-learn modules and heap (~380 MB at 20,000 clients) sit outside
#: DuckDB's limit and stay in the dbt process until it exits, while the other dbt thread's SQL
#: (at 20,000 clients the status history's client days, then the history marts) keeps
#: DuckDB at its limit. At the full 1GB the dbt process peaked at 1.85 GB during the model
#: (2,251-2,467 MB process tree) and, with the limit given back after it, at 1.49 GB after it
#: (a ~2.1 GB tree; 2 GB bound).
DUCKDB_SHARE_FROM_SCORING = 0.5

#: How often and how far apart the cut is tried. DuckDB refuses it while the other dbt
#: thread's query holds more pinned memory than the new limit (at 20,000 clients
#: int_clients__revenue_windows, which builds beside this model: refused in 4 of 6 runs,
#: then the process tree peaked at ~2,040 MB instead of ~1,750-1,900 MB; 2 GB bound). Those
#: moments pass: beside revenue_windows' SQL at 20,000 clients (51-59 s, load 2-3) the cut was
#: refused in its first ~15 s (this function, started 3 s in, got it on try 4 after 11.6 s: a
#: refused try itself takes ~2 s while DuckDB evicts what it can) and in one ~7 s stretch
#: later (a probe every 0.5 s: 3 of 48 tries refused). Twelve tries 2 s apart (~45 s in all
#: if every one is refused) outlast those stretches also at twice the load, before the frames
#: below are loaded. Ordering the model after revenue_windows
#: instead would put its whole time (20-30 s) on the build's critical path on every run
#: (int_clients__lifecycle_days needs both); the wait here is paid only when refused.
CUT_TRIES = 12
CUT_WAIT_SECONDS = 2.0

_UNITS = {"": 1, "b": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

COLUMN_TYPES = {
    # client rows
    "client_id": "string",
    "churn_probability": "float64",
    "score_is_churned": "boolean",
    "score_is_at_risk": "boolean",
    "flags_from": "string",
    "chosen_candidate": "string",
    # the two or three facts that raised the client's score most (pipelines/score/drivers.py)
    "score_drivers": "string",
    "churned_level_cases": "Int64",
    "at_risk_level_cases": "Int64",
    # each candidate's raw score at D (refitted on every passed date), for `kam evaluate`
    "candidate_recency": "float64",
    "candidate_cadence_rule": "float64",
    "candidate_logistic": "float64",
    "candidate_logistic_rfm": "float64",
    "candidate_gradient_boosting": "float64",
    "candidate_blend": "float64",
    # report rows
    "candidate": "string",
    "validation_window": "string",
    "cases": "Int64",
    "lost": "Int64",
    "base_rate": "float64",
    "auc": "float64",
    "mean_auc": "float64",
    "flag_share": "float64",
    "precision_at_flag_share": "float64",
    "recall_at_flag_share": "float64",
    "calibration_error": "float64",
    "is_chosen": "boolean",
    "why": "string",
    "horizon_source": "string",
    "score_version": "string",
    # the recency mix behind churn_probability (NULL: no mix, a simple score chosen)
    "recency_weight": "float64",
    "fitted_recency_weight": "float64",
    "lost_share_drift": "boolean",
    "notes": "string",
    # both
    "horizon_days": "Int64",
    "churned_level": "float64",
    "churned_precision": "float64",
    "at_risk_level": "float64",
    "at_risk_precision": "float64",
}


def _bytes(limit: str) -> int | None:
    """DuckDB's memory_limit setting ('953.6 MiB', '1GB') in bytes; None if unreadable."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", limit)
    if match is None or match.group(2).lower() not in _UNITS:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def say_through_dbt(line: str) -> None:
    """One line in dbt's log, written by dbt's own logger (one whole line per write, under
    its lock). Never print(): dbt's other thread writes its JSON event lines to the same
    stdout, and print writes the text and its newline apart, so a dbt event written between
    them was glued to this line, unreadable to dagster-dbt: in CI a model's result was lost
    that way, and Dagster skipped the publish of a run it called a success. A line with
    "Warning" is a dbt warning (the step log shows it, kam_assets DbtOutput)."""
    try:
        from dbt_common.events.base_types import EventLevel
        from dbt_common.events.functions import fire_event
        from dbt_common.events.types import Note
    except ImportError:  # not in a dbt process (a test, pipelines.spark_build)
        print(line, flush=True)
        return
    level = EventLevel.WARN if "Warning" in line else EventLevel.INFO
    fire_event(Note(msg=line), level=level)


def cut_duckdb_memory(
    session,
    tries: int = CUT_TRIES,
    wait_seconds: float = CUT_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = say_through_dbt,
) -> str | None:
    """Cut DuckDB's memory limit to DUCKDB_SHARE_FROM_SCORING of itself; the new limit.

    The setting is global to the dbt process's DuckDB, so a query on the other thread spills
    to disk beyond it instead of holding memory beside this model's (measured on a 14M-row
    window query: RSS 920 -> 655 MB within a second of the cut, the query unharmed, also cut
    to 300MB). It is not given back: the Python memory stays too (and dbt/profiles.yml
    sets the limit as a connection option, which later nodes' cursors do not set again:
    as a `settings` entry, dbt-duckdb ran it again on each node's cursor, undoing the
    cut). If DuckDB cannot free enough at once (the other thread's query holds it pinned)
    it raises; the cut is tried again up to `tries` times, `wait_seconds` apart. Still
    refused: DuckDB keeps its limit (None), the model runs anyway, and a line says so
    (`say`: dbt's log, so dbt_output.log, and the step log for its "Warning"). No
    session (the model run outside dbt-duckdb, pipelines.spark_build): nothing to cut (None).
    """
    if session is None:
        return None
    (before,) = session.execute("select current_setting('memory_limit')").fetchone()
    limit = _bytes(str(before))
    if not limit:
        return None
    cut = f"{int(limit * DUCKDB_SHARE_FROM_SCORING)}B"
    started = time.monotonic()
    refusal = ""
    for attempt in range(1, tries + 1):
        try:
            session.execute(f"set memory_limit = '{cut}'")
        except duckdb.Error as error:  # DuckDB could not free enough memory at once
            refusal = str(error).splitlines()[0]
            if attempt < tries:
                sleep(wait_seconds)
            continue
        say(
            f"int_clients__churn_model: DuckDB memory limit {before} -> {cut} "
            f"(try {attempt} of {tries}, {time.monotonic() - started:.1f} s)"
        )
        return cut
    say(
        f"int_clients__churn_model: Warning: DuckDB kept its memory limit {before}, the cut "
        f"to {cut} was refused {tries} times over {time.monotonic() - started:.1f} s "
        f"({refusal}); the model's Python memory sits beside DuckDB's full limit"
    )
    return None


def model(dbt, session):
    dbt.config(materialized="table")
    # before the imports and frames below, so they never sit beside DuckDB's full limit
    cut_duckdb_memory(session)
    from pipelines.score import ScoreSettings, score_clients

    (row,) = dbt.ref("int_clients__score_settings").df().to_dict("records")
    as_of = pd.Timestamp(row["as_of_date"]).date()
    settings = ScoreSettings(
        horizon_days=None if pd.isna(row["horizon_days"]) else int(row["horizon_days"]),
        margin=float(row["margin"]),
        windows=int(row["windows"]),
        churned_precision=float(row["churned_precision"]),
        churned_min_overdue_ratio=float(row["churned_min_overdue_ratio"]),
        at_risk_min_overdue_ratio=float(row["at_risk_min_overdue_ratio"]),
        min_cases=int(row["min_cases"]),
        max_cases=int(row["max_cases"]),
        seed=int(row["seed"]),
    )
    # beyond max_cases past cases the features model holds a fixed hash sample of ~1.2 x
    # max_cases of them (20,000 clients x 3 years: ~2M past cases, of which it builds
    # ~120,000), so this frame stays small; score_clients cuts them to max_cases exactly
    features = dbt.ref("int_clients__score_features").df()
    # a library's warning (scikit-learn, pandas) would go to stderr, the pipe dbt's JSON
    # lines share: said through dbt's logger instead, once per distinct message
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = score_clients(features, as_of, settings)
    for message in dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught):
        say_through_dbt(f"int_clients__churn_model: {message}")
    clients = result.clients.copy()
    clients["row_kind"] = "client"
    report = result.report.copy()
    report["row_kind"] = "report"
    out = pd.concat([clients, report], ignore_index=True, sort=False)
    out["as_of_date"] = as_of
    # explicit types: a column of None only (a fallback run) would otherwise become
    # DuckDB's NULL type, which the SQL models downstream cannot cast
    for column, dtype in COLUMN_TYPES.items():
        if column not in out:
            out[column] = None
        out[column] = out[column].astype(dtype)
    return out[["row_kind", "as_of_date", *COLUMN_TYPES]]
