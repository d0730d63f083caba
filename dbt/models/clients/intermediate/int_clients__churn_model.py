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

CLIENT_COLUMNS = (
    "client_id",
    "churn_probability",
    "score_is_churned",
    "score_is_at_risk",
    "flags_from",
    "chosen_candidate",
    "churned_level",
    "churned_precision",
    "churned_level_cases",
    "at_risk_level",
    "at_risk_precision",
    "at_risk_level_cases",
    "horizon_days",
)


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
    features = dbt.ref("int_clients__score_features").df()
    result = score_clients(features, as_of, settings)
    clients = result.clients.copy()
    clients["row_kind"] = "client"
    report = result.report.copy()
    report["row_kind"] = "report"
    out = pd.concat([clients, report], ignore_index=True, sort=False)
    out["as_of_date"] = as_of
    for column in ("score_is_churned", "score_is_at_risk", "is_chosen"):
        out[column] = out[column].astype("boolean")
    return out
