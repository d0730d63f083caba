"""The churn score of D's clients and its report (docs/rules.md "Churn score").

A dbt Python model, run by dbt-duckdb inside the one `dbt build` (so the build order,
partial parsing, backfills and the Dagster graph stay as they are): it reads the features
(int_clients__score_features) and the settings (int_clients__score_settings), and hands
them to pipelines.score, which fits, judges, chooses and calibrates the candidates.

One table, two kinds of rows (row_kind): 'client' (one per client of D: churn_probability,
the score's flags and the levels behind them) and 'report' (one per candidate and
validation window); int_clients__churn_probability and marts.churn_model_report read them.
"""

import pandas as pd

COLUMN_TYPES = {
    # client rows
    "client_id": "string",
    "churn_probability": "float64",
    "score_is_churned": "boolean",
    "score_is_at_risk": "boolean",
    "flags_from": "string",
    "chosen_candidate": "string",
    # the two or three facts that raised the client's score most (pipelines.score.score_drivers)
    "score_drivers": "string",
    "churned_level_cases": "Int64",
    "at_risk_level_cases": "Int64",
    # each candidate's raw score at D (refitted on every passed date), for `kam evaluate`
    "candidate_recency": "float64",
    "candidate_cadence_rule": "float64",
    "candidate_logistic": "float64",
    "candidate_gradient_boosting": "float64",
    "candidate_blend": "float64",
    # report rows
    "candidate": "string",
    "validation_window": "string",
    "cases": "Int64",
    "lost": "Int64",
    "base_rate": "float64",
    "auc": "float64",
    "flag_share": "float64",
    "precision_at_flag_share": "float64",
    "recall_at_flag_share": "float64",
    "calibration_error": "float64",
    "is_chosen": "boolean",
    "why": "string",
    "horizon_source": "string",
    "score_version": "string",
    "notes": "string",
    # both
    "horizon_days": "Int64",
    "churned_level": "float64",
    "churned_precision": "float64",
    "at_risk_level": "float64",
    "at_risk_precision": "float64",
}


def model(dbt, session):
    dbt.config(materialized="table")
    from pipelines.score import ScoreSettings, score_clients

    (row,) = dbt.ref("int_clients__score_settings").df().to_dict("records")
    as_of = pd.Timestamp(row["as_of_date"]).date()
    settings = ScoreSettings(
        horizon_days=None if pd.isna(row["horizon_days"]) else int(row["horizon_days"]),
        margin=float(row["margin"]),
        churned_precision=float(row["churned_precision"]),
        churned_min_overdue_ratio=float(row["churned_min_overdue_ratio"]),
        at_risk_min_overdue_ratio=float(row["at_risk_min_overdue_ratio"]),
        min_cases=int(row["min_cases"]),
        max_cases=int(row["max_cases"]),
        seed=int(row["seed"]),
    )
    features = dbt.ref("int_clients__score_features")
    past = features.filter(f"as_of_date < date '{as_of.isoformat()}'")
    (past_rows,) = past.aggregate("count(*)").fetchall()[0]
    if past_rows > settings.max_cases:
        # a fixed hash sample of the past cases in DuckDB, so pandas never holds them all
        # (20,000 clients x 3 years: ~2M rows; the dbt process peaked at 2.4 GB reading
        # them whole); score_clients then cuts to max_cases exactly
        share = int(1_000_000 * min(1.0, 1.2 * settings.max_cases / past_rows))
        past = past.filter(
            f"hash(client_id || '|' || cast(as_of_date as varchar)) % 1000000 < {share}"
        )
    today = features.filter(f"as_of_date = date '{as_of.isoformat()}'")
    features = pd.concat([past.df(), today.df()], ignore_index=True)
    result = score_clients(features, as_of, settings)
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
