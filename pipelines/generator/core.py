"""generate_demo: the deterministic demo ERP + CRM with a record of planted behaviours."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np

from pipelines.generator import config as cfg
from pipelines.generator.plan import build_managers, build_plan
from pipelines.generator.simulate import Counters, build_products, managers_table, simulate_batch
from pipelines.generator.writers import open_sink

ERP_BATCH_TABLES = ("clients", "orders", "order_lines", "invoices")
CRM_BATCH_TABLES = ("contacts", "interactions")

# Planted groups that are unions of base groups (the base groups are disjoint).
UNIONS: dict[str, tuple[str, ...]] = {
    "silent_churner": (
        "churner_low_value",
        "winback_valuable",
        "unprofitable_churner",
        "winback_revised_terms",
    ),
    "unprofitable": ("unprofitable_steady", "unprofitable_churner"),
    "late_payer": ("late_payer_steady", "winback_revised_terms"),
}

# What the marts are expected to say about each group (documentation for checkers).
EXPECTATIONS: dict[str, str] = {
    "silent_churner": "is_churned; lifecycle churn; no complaints",
    "churner_low_value": "churned, class C before leaving: not a win-back candidate",
    "winback_valuable": "churned, A/B over the 365 days up to the last order, margin > 0: "
    "win-back candidate, requires_revised_terms false",
    "unprofitable_churner": "churned, A/B by revenue but margin < 0: never a win-back candidate",
    "winback_revised_terms": "churned, valuable, poor payer: candidate with requires_revised_terms",
    "unprofitable": "margin < 0 (every line priced below a known unit_cost)",
    "unprofitable_steady": "margin < 0, otherwise steady",
    "late_payer": "has_poor_payment_discipline",
    "late_payer_steady": "has_poor_payment_discipline, otherwise steady",
    "volume_drop": "has_volume_drop; lifecycle decline; not churned",
    "new_client": "first order within the last 60 days: lifecycle acquisition",
    "reactivated": "one order in the last 10-55 days after a gap >= 6 cadences: status "
    "reactivated, not churned",
    "decision_maker_left": "decision_maker_left true (left 10-60 days before end_date)",
    "decision_maker_left_long_ago": "decision_maker_left false (left 200-400 days before)",
    "steady_<segment>": "lifecycle maturity; not at risk, not churned, no volume drop",
}


def _day(d: date) -> int:
    return int(np.datetime64(d, "D").astype(np.int64))


def generate_demo(
    out_dir: Path,
    clients: int = 600,
    years: int = 3,
    seed: int = 42,
    end_date: date = date(2026, 9, 30),
    fmt: str = "sqlite",
    erp_url: str | None = None,
    crm_url: str | None = None,
) -> dict:
    """Write the demo ERP and CRM sources and return the planted record.

    Sources go to ``out_dir/erp.sqlite`` and ``out_dir/crm.sqlite`` (``fmt="sqlite"``),
    to ``out_dir/<system>/<table>.parquet`` (``fmt="parquet"``), or to the given
    SQLAlchemy URLs. ``out_dir/planted.json`` always receives the planted record.
    The same arguments always produce the same data.
    """
    if years < 2:
        raise ValueError("years must be >= 2 (planted behaviours need a year of baseline)")
    if fmt not in ("sqlite", "parquet"):
        raise ValueError(f"unknown format {fmt!r} (sqlite or parquet)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    end = _day(end_date)
    hist_start = end - 365 * years + 1

    rng = np.random.default_rng([seed, 0])
    managers = build_managers(rng, clients, end, hist_start)
    plan = build_plan(rng, clients, years, end, managers)
    products, products_table = build_products(rng, 300 + clients // 50, end)

    counts: dict[str, int] = {}
    erp = open_sink("erp", out_dir, fmt, erp_url)
    crm = open_sink("crm", out_dir, fmt, crm_url)
    try:
        erp.write("products", products_table)
        crm.write("managers", managers_table(managers))
        counts["products"] = products_table.num_rows
        counts["managers"] = len(managers.ids)
        counters = Counters()
        for b, start in enumerate(range(0, clients, cfg.BATCH_CLIENTS)):
            idx = np.arange(start, min(start + cfg.BATCH_CLIENTS, clients))
            batch_rng = np.random.default_rng([seed, 1, b])
            tables = simulate_batch(batch_rng, plan, managers, products, idx, counters)
            for name in ERP_BATCH_TABLES:
                erp.write(name, tables[name])
            for name in CRM_BATCH_TABLES:
                crm.write(name, tables[name])
            for name, table in tables.items():
                counts[name] = counts.get(name, 0) + table.num_rows
    finally:
        erp.close()
        crm.close()

    record = planted_record(plan, seed, clients, years, end_date)
    record["row_counts"] = counts
    (out_dir / "planted.json").write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
    return record


def planted_record(plan, seed: int, clients: int, years: int, end_date: date) -> dict:
    def cid(i: int) -> str:
        return f"C{i + 1:06d}"

    groups: dict[str, list[str]] = {
        name: [cid(i) for i in ids] for name, ids in plan.groups.items()
    }
    for name, parts in UNIONS.items():
        groups[name] = sorted({c for p in parts for c in groups[p]})
    groups = dict(sorted(groups.items()))
    profile: dict[str, dict] = {}
    for name, members in groups.items():
        for c in members:
            i = int(c[1:]) - 1
            seg = cfg.SEGMENT_NAMES[plan.segment[i]]
            entry = profile.setdefault(
                c, {"segment": seg, "cadence_days": cfg.SEGMENTS[seg], "groups": []}
            )
            entry["groups"].append(name)
    return {
        "end_date": end_date.isoformat(),
        "seed": seed,
        "clients": clients,
        "years": years,
        "segments": dict(cfg.SEGMENTS),
        "groups": groups,
        "counts": {name: len(members) for name, members in groups.items()},
        "unions": {name: list(parts) for name, parts in UNIONS.items()},
        "expectations": EXPECTATIONS,
        "planted_clients": dict(sorted(profile.items())),
    }
