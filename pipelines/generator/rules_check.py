"""A small pandas reading of docs/rules.md, used to verify the planted behaviours.

This is a reference check of the generator's output with default settings (no
segment policy), not the pipeline: the dbt models are the implementation of record.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.contract import tables_of


def read_sources(erp_url: str, crm_url: str) -> dict[str, pd.DataFrame]:
    frames: dict[str, pd.DataFrame] = {}
    for system, url in (("erp", erp_url), ("crm", crm_url)):
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                for table in tables_of(system):  # type: ignore[arg-type]
                    frames[table.name] = pd.read_sql_table(table.name, conn)
        finally:
            engine.dispose()
    return frames


def _abc(revenue: pd.Series) -> pd.Series:
    """ABC class of clients with positive revenue (rules.md), indexed like revenue."""
    pos = revenue[revenue > 0]
    ordered = pos.sort_index().sort_values(ascending=False, kind="stable")
    before = ordered.cumsum().shift(fill_value=0.0) / ordered.sum()
    cls = pd.Series(np.where(before < 0.8, "A", np.where(before < 0.95, "B", "C")), ordered.index)
    return cls.reindex(revenue.index)


def client_metrics(frames: dict[str, pd.DataFrame], as_of: date) -> pd.DataFrame:
    """Per-client figures of the churn, volume, payment, lifecycle and win-back rules."""
    d = pd.Timestamp(as_of)
    clients = frames["clients"].set_index("client_id")
    orders = frames["orders"].copy()
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    orders = orders[orders["order_date"] <= d]
    lines = frames["order_lines"]
    lines = lines.assign(
        net=lines["quantity"] * lines["unit_price"] - lines["discount"].fillna(0.0),
        cost=lines["quantity"] * lines["unit_cost"],
    )
    per_order = lines.groupby("order_id").agg(net=("net", "sum"), cost=("cost", "sum"))
    orders = orders.join(per_order, on="order_id")
    sign = orders["status"].map({"completed": 1.0, "returned": -1.0, "cancelled": 0.0})
    orders["net_rev"] = orders["net"] * sign
    orders["margin"] = (orders["net"] - orders["cost"]) * sign
    done = orders[orders["status"] == "completed"]

    out = pd.DataFrame(index=clients.index)
    out["segment"] = clients["segment"]
    days = done.groupby("client_id")["order_date"].apply(lambda s: np.sort(s.unique()))
    out["order_days"] = days.reindex(out.index).apply(lambda v: 0 if v is np.nan else len(v))

    def median_gap(v) -> float:
        if not isinstance(v, np.ndarray) or len(v) < 4:
            return np.nan
        return float(np.median(np.diff(v).astype("timedelta64[D]").astype(int)))

    out["own_interval"] = days.reindex(out.index).apply(median_gap)
    seg_norm = out.groupby("segment")["own_interval"].median()
    out["expected_interval"] = out["own_interval"].fillna(out["segment"].map(seg_norm)).fillna(30)
    last = done.groupby("client_id")["order_date"].max().reindex(out.index)
    first = done.groupby("client_id")["order_date"].min().reindex(out.index)
    out["days_since_last_order"] = (d - last).dt.days
    out["overdue_ratio"] = out["days_since_last_order"] / out["expected_interval"]
    out["is_churned"] = out["overdue_ratio"] >= 3.0
    out["is_at_risk"] = (out["overdue_ratio"] >= 1.5) & ~out["is_churned"]

    def window_sum(col: str, lo: int, hi: int) -> pd.Series:
        w = orders[(orders["order_date"] >= d - pd.Timedelta(days=lo))]
        w = w[w["order_date"] <= d - pd.Timedelta(days=hi)]
        return w.groupby("client_id")[col].sum().reindex(out.index, fill_value=0.0)

    out["revenue_last_90d"] = window_sum("net_rev", 89, 0)
    out["baseline_revenue_90d"] = window_sum("net_rev", 359, 90) / 3
    judged = (out["expected_interval"] <= 30) & (out["baseline_revenue_90d"] > 0)
    drop = out["revenue_last_90d"] <= (1 - 1 / 3) * out["baseline_revenue_90d"]
    out["has_volume_drop"] = drop.where(judged)
    out["margin_365d"] = window_sum("margin", 364, 0)
    recent, earlier = window_sum("net_rev", 179, 0), window_sum("net_rev", 359, 180)
    development = (earlier > 0) & (recent >= 1.15 * earlier)
    acquisition = (first >= d - pd.Timedelta(days=89)).fillna(False)
    stage = np.select(
        [
            out["is_churned"],
            out["is_at_risk"] | out["has_volume_drop"].fillna(False).astype(bool),
            acquisition,
            development,
        ],
        ["churn", "decline", "acquisition", "development"],
        "maturity",
    )
    out["lifecycle_stage"] = pd.Series(stage, out.index).where(last.notna())

    # Reactivated: latest order day in D-89..D after a gap >= 3 x expected interval.
    def last_gap(v) -> float:
        if not isinstance(v, np.ndarray) or len(v) < 2:
            return np.nan
        return float((v[-1] - v[-2]).astype("timedelta64[D]").astype(int))

    gap = days.reindex(out.index).apply(last_gap)
    out["is_reactivated"] = (
        ~out["is_churned"]
        & (out["days_since_last_order"] <= 89)
        & (gap >= 3.0 * out["expected_interval"])
    )

    contacts = frames["contacts"]
    left = pd.to_datetime(contacts["left_at"])
    dm = contacts[contacts["is_decision_maker"] & (left >= d - pd.Timedelta(days=89)) & (left <= d)]
    out["decision_maker_left"] = out.index.isin(dm["client_id"])

    inv = frames["invoices"].copy()
    for col in ("due_date", "paid_date", "issued_date"):
        inv[col] = pd.to_datetime(inv[col])
    inv = inv[(inv["due_date"] >= d - pd.Timedelta(days=364)) & (inv["due_date"] <= d)]
    paid_by_d = inv["paid_date"].where(inv["paid_date"] <= d)
    late = (paid_by_d - inv["due_date"]).dt.days > 30
    late |= paid_by_d.isna() & ((d - inv["due_date"]).dt.days > 30)
    stats = inv.assign(late=late).groupby("client_id")["late"].agg(["sum", "count"])
    stats = stats.reindex(out.index, fill_value=0)
    out["late_invoices_365d"] = stats["sum"]
    out["has_poor_payment_discipline"] = (stats["sum"] >= 2) & (
        stats["sum"] >= 0.25 * stats["count"].clip(lower=1)
    )

    inter = frames["interactions"]
    occurred = pd.to_datetime(inter["occurred_at"])
    complaints = inter[(inter["kind"] == "complaint") & (occurred <= d + pd.Timedelta(days=1))]
    out["complaints"] = complaints.groupby("client_id").size().reindex(out.index, fill_value=0)

    # Value before leaving: ABC and margin over the 365 days up to each client's last order.
    abc_before, margin_before = {}, {}
    for cid in out.index[out["is_churned"]]:
        hi = last[cid]
        lo = hi - pd.Timedelta(days=364)
        w = orders[(orders["order_date"] >= lo) & (orders["order_date"] <= hi)]
        rev = w.groupby("client_id")["net_rev"].sum()
        abc_before[cid] = _abc(rev).get(cid)
        margin_before[cid] = w[w["client_id"] == cid]["margin"].sum()
    out["abc_before_leaving"] = pd.Series(abc_before, dtype=object).reindex(out.index)
    out["margin_before_leaving"] = pd.Series(margin_before, dtype=float).reindex(out.index)
    out["winback_candidate"] = (
        (out["lifecycle_stage"] == "churn")
        & out["abc_before_leaving"].isin(["A", "B"])
        & (out["margin_before_leaving"] > 0)
    )
    return out
