"""The churn score each company earns from its own past (docs/rules.md "Churn score").

Framework-free (never imports Dagster or dbt): a frame of features per (as-of date,
client) goes in -- the past backtest dates and D's clients, built by the dbt model
``int_clients__score_features`` from orders up to D only -- and out come:

* each candidate score (plain recency, the cadence rule's overdue ratio, a regularised
  logistic regression and a gradient-boosted model monotone in lateness) fitted on older
  past dates and judged on the most recent passed dates (out of time), the learned ones on
  the half of the clients they were not fitted on;
* the chosen one (a learned model must beat recency by a margin there), calibrated on that
  window (Platt, so the ranking is kept) and refitted on every passed date to score D;
* the probability levels of the churned and at-risk flags, chosen on the window by their
  validated precision;
* one report row per candidate and window (``marts.churn_model_report``).

    from pipelines.score import ScoreSettings, score_clients
    result = score_clients(features_frame, as_of, ScoreSettings())
    result.clients  # one row per client of D
    result.report   # one row per candidate and validation window

The dbt Python model ``int_clients__churn_model`` calls it inside the one ``dbt build``.
"""

from pipelines.score.model import score_clients
from pipelines.score.settings import (
    SCORE_VERSION,
    ScoreError,
    ScoreResult,
    ScoreSettings,
    derive_horizon,
)

__all__ = [
    "SCORE_VERSION",
    "ScoreError",
    "ScoreResult",
    "ScoreSettings",
    "derive_horizon",
    "score_clients",
]
