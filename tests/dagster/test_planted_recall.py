"""End to end on the demo generator's data: do the marts find what was planted?

The daily job runs on the default demo (600 clients, 3 years). For every planted group
the test measures recall (planted clients the marts flag) and false positives (clients
of groups planted *without* that behaviour that the marts flag anyway), prints them and
asserts minimum bars. The figures are also written to $KAM_RECALL_REPORT when set.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

pytestmark = pytest.mark.slow

AS_OF = "2026-09-30"


@pytest.fixture(scope="module")
def demo_run(kam_defs, tmp_path_factory: pytest.TempPathFactory):
    from pipelines.generator import generate_demo

    base = tmp_path_factory.mktemp("recall")
    planted = generate_demo(base / "demo", end_date=date.fromisoformat(AS_OF))
    env = {
        "KAM_DATA_DIR": str(base / "data"),
        "KAM_WAREHOUSE": str(base / "warehouse" / "kam.duckdb"),
        "KAM_ERP_URL": f"sqlite:///{base / 'demo' / 'erp.sqlite'}",
        "KAM_CRM_URL": f"sqlite:///{base / 'demo' / 'crm.sqlite'}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = kam_defs.resolve_job_def("kam_daily").execute_in_process(
            partition_key=AS_OF, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert result.success, "the daily job failed on the demo data"
    con = duckdb.connect(env["KAM_WAREHOUSE"], read_only=True)

    def ids(sql: str) -> set[str]:
        return {row[0] for row in con.execute(sql).fetchall()}

    flagged = {
        "churned": ids("select client_id from marts.client_churn_signals where is_churned"),
        "lifecycle_churn": ids(
            "select client_id from marts.client_lifecycle where lifecycle_stage = 'churn'"
        ),
        "winback": ids("select client_id from marts.winback_candidates"),
        "revised_terms": ids(
            "select client_id from marts.winback_candidates where requires_revised_terms"
        ),
        "volume_drop": ids(
            "select client_id from marts.client_churn_signals where has_volume_drop"
        ),
        "decline": ids(
            "select client_id from marts.client_lifecycle where lifecycle_stage = 'decline'"
        ),
        "acquisition": ids(
            "select client_id from marts.client_lifecycle where lifecycle_stage = 'acquisition'"
        ),
        "reactivated": ids(
            "select client_id from marts.client_lifecycle where status_group = 'reactivated'"
        ),
        "dm_left": ids(
            "select client_id from marts.client_churn_signals where decision_maker_left"
        ),
        "poor_payer": ids(
            "select client_id from marts.client_churn_signals where has_poor_payment_discipline"
        ),
        "at_risk_or_churned": ids(
            "select client_id from marts.client_churn_signals"
            " where is_at_risk or is_churned or coalesce(has_volume_drop, false)"
        ),
        "maturity": ids(
            "select client_id from marts.client_lifecycle where lifecycle_stage = 'maturity'"
        ),
        "dm_action": ids(
            "select client_id from marts.kam_actions where action_type like '%decision_maker%'"
        ),
    }
    kept_manager = con.execute(
        "select count(*) from marts.winback_candidates"
        " where suggested_manager_id = lost_by_manager_id or suggested_manager_id is null"
    ).fetchall()[0][0]
    con.close()
    return planted, flagged, kept_manager


def _groups(planted: dict, *names: str) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= set(planted["groups"][name])
    return out


def _steady(planted: dict) -> set[str]:
    return _groups(planted, *[g for g in planted["groups"] if g.startswith("steady_")])


# (name, planted groups that must be flagged, mart flag, groups that must NOT be flagged,
#  minimum recall, maximum false-positive share)
CASES = [
    ("silent churners -> is_churned", ["silent_churner"], "churned", "steady+", 0.95, 0.0),
    (
        "silent churners -> lifecycle churn",
        ["silent_churner"],
        "lifecycle_churn",
        "steady+",
        0.95,
        0.0,
    ),
    (
        "valuable churners -> win-back",
        ["winback_valuable", "winback_revised_terms"],
        "winback",
        ["churner_low_value", "unprofitable_churner"],
        0.9,
        0.0,
    ),
    (
        "late valuable churners -> revised terms",
        ["winback_revised_terms"],
        "revised_terms",
        ["winback_valuable"],
        0.9,
        0.0,
    ),
    ("volume drop -> has_volume_drop", ["volume_drop"], "volume_drop", "steady", 0.9, 0.05),
    ("volume drop -> lifecycle decline", ["volume_drop"], "decline", "steady", 0.9, 0.05),
    ("new clients -> acquisition", ["new_client"], "acquisition", "steady", 0.9, 0.0),
    ("reactivated -> status reactivated", ["reactivated"], "reactivated", "steady", 0.9, 0.0),
    (
        "decision maker left -> flagged",
        ["decision_maker_left"],
        "dm_left",
        ["decision_maker_left_long_ago"],
        1.0,
        0.0,
    ),
    (
        "decision maker left -> action",
        ["decision_maker_left"],
        "dm_action",
        ["decision_maker_left_long_ago"],
        0.9,
        0.0,
    ),
    ("late payers -> poor payment discipline", ["late_payer"], "poor_payer", "steady", 0.9, 0.05),
    (
        "steady clients -> maturity",
        "steady",
        "maturity",
        ["volume_drop", "silent_churner"],
        0.9,
        0.0,
    ),
]


def _resolve(planted: dict, spec) -> set[str]:
    if spec == "steady":
        return _steady(planted)
    if spec == "steady+":  # every planted group that should stay active
        return _steady(planted) | _groups(
            planted,
            "volume_drop",
            "new_client",
            "reactivated",
            "late_payer_steady",
            "unprofitable_steady",
            "decision_maker_left",
            "decision_maker_left_long_ago",
        )
    return _groups(planted, *spec)


def test_marts_find_planted_behaviour(demo_run) -> None:
    planted, flagged, kept_manager = demo_run
    report, failures = [], []
    for name, positive_spec, flag, negative_spec, min_recall, max_fp in CASES:
        positives = _resolve(planted, positive_spec)
        negatives = _resolve(planted, negative_spec) - positives
        assert positives and negatives, name
        hits = flagged[flag]
        recall = len(positives & hits) / len(positives)
        fp_share = len(negatives & hits) / len(negatives)
        report.append(
            {
                "case": name,
                "planted": len(positives),
                "found": len(positives & hits),
                "recall": round(recall, 3),
                "negatives": len(negatives),
                "false_positives": len(negatives & hits),
                "fp_share": round(fp_share, 3),
            }
        )
        if recall < min_recall or fp_share > max_fp:
            failures.append(
                f"{name}: recall {recall:.2f} (min {min_recall}), "
                f"false positives {fp_share:.2f} (max {max_fp})"
            )
    for row in report:
        print(row)
    if os.environ.get("KAM_RECALL_REPORT"):
        Path(os.environ["KAM_RECALL_REPORT"]).write_text(json.dumps(report, indent=2))
    assert kept_manager == 0, "a win-back candidate kept the manager who lost it"
    assert not failures, "\n".join(failures)
