"""Tests of the deterministic demo data generator (pipelines/generator)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines import contract
from pipelines.contract import ARROW_TYPES
from pipelines.generator import generate_demo
from pipelines.generator.__main__ import main as cli_main
from pipelines.generator.rules_check import client_metrics, read_sources

END = dt.date(2026, 9, 30)
D = pd.Timestamp(END)
SMALL = {"clients": 150, "years": 3}

PYTHON_TYPES = {
    "string": str,
    "integer": int,
    "double": float,
    "boolean": bool,
    "date": dt.date,
    "timestamp": dt.datetime,
}


def _urls(folder: Path) -> tuple[str, str]:
    return f"sqlite:///{folder / 'erp.sqlite'}", f"sqlite:///{folder / 'crm.sqlite'}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict, dict[str, pd.DataFrame]]:
    folder = tmp_path_factory.mktemp("demo")
    record = generate_demo(folder, seed=7, **SMALL)
    return folder, record, read_sources(*_urls(folder))


def _fingerprint(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    return {
        name: int(pd.util.hash_pandas_object(df, index=False).sum()) for name, df in frames.items()
    }


# --- determinism ------------------------------------------------------------------------


def test_same_seed_same_data_different_seed_different(demo, tmp_path):
    folder, record, frames = demo
    again = generate_demo(tmp_path / "again", seed=7, **SMALL)
    other = generate_demo(tmp_path / "other", seed=8, **SMALL)
    same_frames = read_sources(*_urls(tmp_path / "again"))
    other_frames = read_sources(*_urls(tmp_path / "other"))
    assert _fingerprint(same_frames) == _fingerprint(frames)
    assert again == record
    assert json.loads((tmp_path / "again" / "planted.json").read_text()) == record
    other_prints = _fingerprint(other_frames)
    for name in ("orders", "order_lines", "invoices", "interactions", "contacts"):
        assert other_prints[name] != _fingerprint(frames)[name], name
    assert other["groups"] != record["groups"]


# --- contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("table", contract.TABLES, ids=lambda t: f"{t.system}.{t.name}")
def test_contract_tables_columns_and_types(demo, table: contract.Table):
    folder, _, frames = demo
    url = _urls(folder)[0 if table.system == "erp" else 1]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert list(columns) == table.column_names
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert tuple(pk) == table.primary_key
        for col in table.columns:
            assert columns[col.name]["type"].python_type is PYTHON_TYPES[col.type], col.name
            if not col.nullable:
                assert columns[col.name]["nullable"] is False or col.name in table.primary_key
        # Values read back through SQLAlchemy have the contract's Python types.
        with engine.connect() as conn:
            row = conn.execute(sa.select(sa.table(table.name, *map(sa.column, columns)))).first()
        meta = sa.MetaData()
        reflected = sa.Table(table.name, meta, autoload_with=engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(reflected).limit(200)).mappings().all()
    finally:
        engine.dispose()
    assert row is not None, f"{table.name} is empty"
    for col in table.columns:
        values = [r[col.name] for r in rows if r[col.name] is not None]
        if col.nullable and not values:
            continue
        assert values, f"{table.name}.{col.name} has no values"
        expected = PYTHON_TYPES[col.type]
        for v in values:
            if expected is dt.date:
                assert type(v) is dt.date, (col.name, v)
            else:
                assert isinstance(v, expected), (col.name, v)
        if not col.nullable:
            assert frames[table.name][col.name].notna().all(), col.name


def test_primary_keys_unique_and_foreign_keys_resolve(demo):
    _, _, f = demo
    for table in contract.TABLES:
        df = f[table.name]
        assert not df.duplicated(list(table.primary_key)).any(), table.name
        assert len(df) > 0, table.name
    assert f["orders"]["client_id"].isin(f["clients"]["client_id"]).all()
    assert f["order_lines"]["order_id"].isin(f["orders"]["order_id"]).all()
    assert f["orders"]["order_id"].isin(f["order_lines"]["order_id"]).all()
    assert f["order_lines"]["product_id"].isin(f["products"]["product_id"]).all()
    assert f["invoices"]["order_id"].isin(f["orders"]["order_id"]).all()
    assert f["invoices"]["client_id"].isin(f["clients"]["client_id"]).all()
    assert f["clients"]["account_manager_id"].isin(f["managers"]["manager_id"]).all()
    for name in ("contacts", "interactions"):
        assert f[name]["client_id"].isin(f["clients"]["client_id"]).all(), name
    inter = f["interactions"]
    assert inter["manager_id"].isin(f["managers"]["manager_id"]).all()
    known = inter["contact_id"].dropna()
    assert known.isin(f["contacts"]["contact_id"]).all()
    # An interaction's contact belongs to the same client.
    pairs = inter.dropna(subset=["contact_id"]).merge(
        f["contacts"][["contact_id", "client_id"]], on="contact_id", suffixes=("", "_c")
    )
    assert (pairs["client_id"] == pairs["client_id_c"]).all()


def test_categorical_values_within_contract_sets(demo):
    _, _, f = demo
    assert set(f["orders"]["status"]) == set(contract.ORDER_STATUSES)
    assert set(f["managers"]["level"]) == set(contract.LEVELS)
    assert set(f["contacts"]["level"]) == set(contract.LEVELS)
    assert set(f["interactions"]["channel"]) == set(contract.CHANNELS)
    assert set(f["interactions"]["kind"]) == set(contract.INTERACTION_KINDS)
    tiers = f["clients"]["declared_tier"]
    assert set(tiers.dropna()) == set(contract.TIERS)
    assert tiers.isna().any()
    sat = f["interactions"]["satisfaction"].dropna()
    assert sat.between(1, 5).all() and f["interactions"]["satisfaction"].isna().any()
    for table in contract.TABLES:
        for col in table.columns:
            if col.allowed:
                assert set(f[table.name][col.name].dropna()) <= set(col.allowed)


def test_content_is_plausible(demo):
    _, record, f = demo
    clients = f["clients"]
    assert clients["segment"].nunique() >= 4
    assert set(record["segments"]) == set(clients["segment"])
    assert min(record["segments"].values()) <= 7 and max(record["segments"].values()) >= 365
    lines = f["order_lines"]
    assert len(lines) >= 3 * len(f["orders"])  # several lines per order
    assert lines["unit_cost"].isna().any() and lines["unit_cost"].notna().mean() > 0.8
    assert (lines["discount"] > 0).any()
    completed = f["orders"][f["orders"]["status"] == "completed"]
    assert len(f["invoices"]) == len(completed)
    inv = f["invoices"]
    terms = inv.merge(clients[["client_id", "payment_terms_days"]], on="client_id")
    due_gap = pd.to_datetime(terms["due_date"]) - pd.to_datetime(terms["issued_date"])
    assert (due_gap.dt.days == terms["payment_terms_days"]).all()
    assert inv["paid_date"].isna().any()
    contacts = f["contacts"]
    per_client = contacts.groupby("client_id")["level"].nunique()
    assert (per_client == 3).all() and len(per_client) == len(clients)
    assert contacts["is_decision_maker"].any() and contacts["left_at"].notna().any()
    complaints = f["interactions"][f["interactions"]["kind"] == "complaint"]
    assert complaints["resolved_at"].notna().any()
    resolved = complaints.dropna(subset=["resolved_at"])
    assert (pd.to_datetime(resolved["resolved_at"]) > pd.to_datetime(resolved["occurred_at"])).all()
    # Quarterly seasonality: Q4 revenue per order above the rest (non-planted clients).
    orders = f["orders"].merge(
        lines.assign(v=lines["quantity"] * lines["unit_price"]).groupby("order_id")["v"].sum(),
        on="order_id",
    )
    q4 = pd.to_datetime(orders["order_date"]).dt.quarter == 4
    assert orders.loc[q4, "v"].mean() > orders.loc[~q4, "v"].mean()


def test_nothing_after_end_date_and_history_length(demo):
    _, _, f = demo
    end_of_day = D + pd.Timedelta(days=1)
    for table in contract.TABLES:
        for col in table.columns:
            if col.type in ("date", "timestamp") and col.name != "due_date":
                values = pd.to_datetime(f[table.name][col.name]).dropna()
                limit = end_of_day if col.type == "timestamp" else D
                assert (
                    (values < limit).all() if col.type == "timestamp" else (values <= limit).all()
                ), (
                    table.name,
                    col.name,
                )
    order_dates = pd.to_datetime(f["orders"]["order_date"])
    assert order_dates.min() >= D - pd.Timedelta(days=3 * 365)
    assert order_dates.min() <= D - pd.Timedelta(days=3 * 365 - 30)
    created = pd.to_datetime(f["clients"]["created_at"])
    assert (created <= pd.to_datetime(f["clients"]["updated_at"])).all()


# --- planted behaviours -----------------------------------------------------------------

BASE_GROUPS = (
    "churner_low_value",
    "winback_valuable",
    "unprofitable_churner",
    "winback_revised_terms",
    "unprofitable_steady",
    "late_payer_steady",
    "volume_drop",
    "new_client",
    "reactivated",
    "decision_maker_left",
    "decision_maker_left_long_ago",
)


def test_planted_record_shape(demo):
    folder, record, f = demo
    assert json.loads((folder / "planted.json").read_text()) == record
    assert record["end_date"] == "2026-09-30" and record["seed"] == 7
    assert record["clients"] == SMALL["clients"] and record["years"] == SMALL["years"]
    ids = set(f["clients"]["client_id"])
    segments = f["clients"].set_index("client_id")["segment"]
    for name, members in record["groups"].items():
        assert members, name
        assert set(members) <= ids, name
        assert record["counts"][name] == len(members)
    base = [*BASE_GROUPS, *(f"steady_{s}" for s in record["segments"])]
    seen: set[str] = set()
    for name in base:
        members = set(record["groups"][name])
        assert not members & seen, f"{name} overlaps another base group"
        seen |= members
    for seg in record["segments"]:
        assert (segments[record["groups"][f"steady_{seg}"]] == seg).all()
    for union, parts in record["unions"].items():
        assert set(record["groups"][union]) == {c for p in parts for c in record["groups"][p]}
    for cid, profile in record["planted_clients"].items():
        assert segments[cid] == profile["segment"]
        assert profile["cadence_days"] == record["segments"][profile["segment"]]


def test_default_size_has_ten_per_group(tmp_path):
    import numpy as np

    from pipelines.generator.plan import _assign_groups

    groups = _assign_groups(np.random.default_rng(0), 600)
    assert min(len(v) for v in groups.values()) >= 10


def _order_values(f: dict[str, pd.DataFrame]) -> pd.DataFrame:
    lines = f["order_lines"]
    net = (
        (lines["quantity"] * lines["unit_price"] - lines["discount"].fillna(0))
        .groupby(lines["order_id"])
        .sum()
    )
    cost = (lines["quantity"] * lines["unit_cost"]).groupby(lines["order_id"]).sum()
    orders = f["orders"].set_index("order_id").assign(net=net, cost=cost).reset_index()
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    return orders[orders["status"] == "completed"]


def test_planted_behaviour_direct_checks(demo):
    _, record, f = demo
    g = record["groups"]
    cadence = {c: p["cadence_days"] for c, p in record["planted_clients"].items()}
    orders = _order_values(f)
    last = orders.groupby("client_id")["order_date"].max()
    first = orders.groupby("client_id")["order_date"].min()
    count = orders.groupby("client_id").size()

    for cid in g["silent_churner"]:
        assert (D - last[cid]).days >= 3 * cadence[cid], cid
        assert cadence[cid] <= 30
    complaints = f["interactions"][f["interactions"]["kind"] == "complaint"]
    assert not complaints["client_id"].isin(g["silent_churner"]).any()

    for cid in g["volume_drop"]:
        o = orders[orders["client_id"] == cid]
        recent = o[o["order_date"] >= D - pd.Timedelta(days=89)]["net"].sum()
        base = o[
            (o["order_date"] >= D - pd.Timedelta(days=359))
            & (o["order_date"] <= D - pd.Timedelta(days=90))
        ]["net"].sum()
        assert recent > 0 and recent <= (2 / 3) * base / 3, cid
        assert (D - last[cid]).days < 1.5 * cadence[cid], cid

    inv = f["invoices"].copy()
    for col in ("due_date", "paid_date"):
        inv[col] = pd.to_datetime(inv[col])
    inv = inv[inv["due_date"] >= D - pd.Timedelta(days=364)]
    late = ((inv["paid_date"] - inv["due_date"]).dt.days > 30) | (
        inv["paid_date"].isna() & ((D - inv["due_date"]).dt.days > 30)
    )
    late_per_client = late.groupby(inv["client_id"]).sum()
    for cid in g["late_payer"]:
        assert late_per_client.get(cid, 0) >= 2, cid
    for cid in g["steady_horeca"] + g["steady_retail"]:
        assert late_per_client.get(cid, 0) == 0, cid

    contacts = f["contacts"].assign(left_at=pd.to_datetime(f["contacts"]["left_at"]))
    dm = contacts[contacts["is_decision_maker"]]
    recent_left = dm[dm["left_at"] >= D - pd.Timedelta(days=89)]
    assert set(g["decision_maker_left"]) <= set(recent_left["client_id"])
    assert not set(g["decision_maker_left_long_ago"]) & set(recent_left["client_id"])
    long_ago = dm[dm["left_at"] <= D - pd.Timedelta(days=200)]
    assert set(g["decision_maker_left_long_ago"]) <= set(long_ago["client_id"])

    for cid in g["new_client"]:
        assert (D - first[cid]).days <= 60 and count[cid] >= 2, cid
    for cid in g["reactivated"]:
        days = sorted(orders[orders["client_id"] == cid]["order_date"].unique())
        assert (D - days[-1]).days <= 60, cid
        assert (days[-1] - days[-2]).days >= 5 * cadence[cid], cid

    margin = orders.groupby("client_id").apply(lambda o: (o["net"] - o["cost"]).sum())
    for cid in g["unprofitable"]:
        assert margin[cid] < 0, cid
    for cid in g["winback_valuable"]:
        assert margin[cid] > 0, cid

    for seg, cad in record["segments"].items():
        for cid in g[f"steady_{seg}"]:
            assert (D - last[cid]).days < 1.5 * cad, cid


def test_planted_outcomes_by_the_rules(demo):
    """Recompute the docs/rules.md figures with pandas: every group lands where planted."""
    _, record, f = demo
    m = client_metrics(f, END)
    g = record["groups"]

    def rows(name: str) -> pd.DataFrame:
        return m.loc[g[name]]

    churners = rows("silent_churner")
    assert churners["is_churned"].all() and (churners["lifecycle_stage"] == "churn").all()
    assert (churners["overdue_ratio"] >= 5).all()
    assert rows("winback_valuable")["winback_candidate"].all()
    assert rows("winback_revised_terms")["winback_candidate"].all()
    assert rows("winback_revised_terms")["has_poor_payment_discipline"].all()
    assert not rows("winback_valuable")["has_poor_payment_discipline"].any()
    assert not rows("unprofitable_churner")["winback_candidate"].any()
    assert rows("unprofitable_churner")["abc_before_leaving"].isin(["A", "B"]).all()
    assert not rows("churner_low_value")["winback_candidate"].any()
    assert (rows("unprofitable")["margin_365d"] < 0).all() | rows("unprofitable")[
        "is_churned"
    ].all()
    assert (rows("unprofitable_steady")["margin_365d"] < 0).all()
    assert (rows("unprofitable_churner")["margin_before_leaving"] < 0).all()
    assert rows("late_payer")["has_poor_payment_discipline"].all()
    vd = rows("volume_drop")
    assert (vd["has_volume_drop"] == True).all()  # noqa: E712 (nullable)
    assert (vd["lifecycle_stage"] == "decline").all() and not vd["is_churned"].any()
    assert (rows("new_client")["lifecycle_stage"] == "acquisition").all()
    re = rows("reactivated")
    assert re["is_reactivated"].all() and not re["is_churned"].any()
    assert rows("decision_maker_left")["decision_maker_left"].all()
    assert not rows("decision_maker_left_long_ago")["decision_maker_left"].any()
    for seg in record["segments"]:
        steady = rows(f"steady_{seg}")
        assert (steady["lifecycle_stage"] == "maturity").all(), seg
        assert not (steady["is_at_risk"] | steady["is_churned"]).any(), seg
        assert not (steady["has_volume_drop"] == True).any(), seg  # noqa: E712
        assert not steady["has_poor_payment_discipline"].any(), seg


# --- formats and targets ----------------------------------------------------------------


def test_parquet_format_matches_sqlite(demo, tmp_path):
    _, record, frames = demo
    out = tmp_path / "pq"
    parquet_record = generate_demo(out, seed=7, fmt="parquet", **SMALL)
    assert parquet_record["groups"] == record["groups"]
    for table in contract.TABLES:
        path = out / table.system / f"{table.name}.parquet"
        read = pq.read_table(path)
        assert read.schema.names == table.column_names
        for col in table.columns:
            assert read.schema.field(col.name).type == ARROW_TYPES[col.type], col.name
        assert read.num_rows == len(frames[table.name]), table.name
    assert not (out / "erp.sqlite").exists()


def test_cli_writes_parquet(tmp_path, capsys):
    assert (
        cli_main(["--out", str(tmp_path), "--clients", "80", "--years", "2", "--format", "parquet"])
        == 0
    )
    record = json.loads((tmp_path / "planted.json").read_text())
    assert record["clients"] == 80 and record["years"] == 2
    assert (
        pq.read_table(tmp_path / "erp" / "orders.parquet").num_rows
        == record["row_counts"]["orders"]
    )
    assert "order_lines" in capsys.readouterr().out


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_demo(tmp_path, clients=20)
    with pytest.raises(ValueError):
        generate_demo(tmp_path, clients=100, years=1)
    with pytest.raises(ValueError):
        generate_demo(tmp_path, clients=100, fmt="csv")


@pytest.mark.postgres
def test_postgres_target(pg_url, tmp_path):
    record = generate_demo(tmp_path, clients=80, years=2, seed=3, erp_url=pg_url, crm_url=pg_url)
    assert not (tmp_path / "erp.sqlite").exists()
    assert (tmp_path / "planted.json").exists()
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        with engine.connect() as conn:
            for table in contract.TABLES:
                n = conn.execute(sa.text(f"select count(*) from {table.name}")).scalar_one()
                assert n == record["row_counts"][table.name] and n > 0, table.name
                cols = inspector.get_columns(table.name)
                assert [c["name"] for c in cols] == table.column_names
                for c, spec in zip(cols, table.columns, strict=True):
                    assert c["type"].python_type is PYTHON_TYPES[spec.type], spec.name
                pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
                assert tuple(pk) == table.primary_key
            nulls = conn.execute(
                sa.text("select count(*) from invoices where paid_date is null")
            ).scalar_one()
            assert nulls > 0
            first = conn.execute(
                sa.text("select min(order_date), max(order_date) from orders")
            ).one()
            assert isinstance(first[0], dt.date) and first[1] <= END
        # Writing again replaces the tables (no duplicates).
        generate_demo(tmp_path, clients=80, years=2, seed=3, erp_url=pg_url, crm_url=pg_url)
        with engine.connect() as conn:
            n = conn.execute(sa.text("select count(*) from orders")).scalar_one()
        assert n == record["row_counts"]["orders"]
    finally:
        engine.dispose()
