"""Backtest of the churn flags on the configured data: `kam evaluate --as-of D --horizon-days H`.

The flags published for D (``marts.client_churn_signals``) against what each client did in
the ``H`` days after D (the work DB's raw orders): ROC AUC of ``churn_probability``, of
the overdue ratio and of plain recency, precision at recall 0.50 of churn_probability and
of recency ranked high to low, precision and recall of each flag, the base rate,
whether the horizon has passed (a horizon not passed is refused unless a partial
judgement is asked for).
Framework-free (never imports Dagster); ``kam_assets.cli`` only calls it.

    from pipelines.evaluate import evaluate, format_evaluation
    print(format_evaluation(evaluate(warehouse, work_db, as_of, horizon_days)))
"""

from pipelines.evaluate.backtest import (
    ClientCase,
    EvaluateError,
    Evaluation,
    HorizonNotPassed,
    evaluate,
    evaluate_cases,
    format_evaluation,
    format_json,
)
from pipelines.evaluate.metrics import (
    FlagScore,
    average_ranks,
    flag_score,
    roc_auc,
    top_at_recall,
)

__all__ = [
    "ClientCase",
    "EvaluateError",
    "Evaluation",
    "FlagScore",
    "HorizonNotPassed",
    "average_ranks",
    "evaluate",
    "evaluate_cases",
    "flag_score",
    "format_evaluation",
    "format_json",
    "roc_auc",
    "top_at_recall",
]
