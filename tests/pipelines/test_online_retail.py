"""The Online Retail adapter: mapping rules on a hand-made file, and the real export.

The real-data tests read the UCI Online Retail export from ``$KAM_ONLINE_RETAIL_CSV``
or ``../shared/data/online_retail/online_retail.csv.gz`` (relative to the repository
root) and skip when it is absent (fail under KAM_REQUIRE_ONLINE_RETAIL=1, as .ci/run sets:
tests/online_retail_export.py). They convert it once per module (~10-15 s).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from online_retail_export import online_retail_csv_path, require_online_retail_csv

from pipelines.adapters.online_retail import (
    R_CUSTOMER_CONFLICT,
    R_DUPLICATE,
    R_MALFORMED,
    R_NO_CUSTOMER,
    R_NON_PRODUCT,
    R_PRICE,
    R_SALE_QUANTITY,
    convert_online_retail,
    main,
)
from pipelines.contract import tables_of

# Expected Arrow type per contract type, stated here independently of the adapter.
EXPECTED_ARROW = {
    "string": pa.string(),
    "integer": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
ERP_TABLES = [t.name for t in tables_of("erp")]

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
# file line number -> text (the header is line 1)
SMALL_LINES = [
    "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",  # 2
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",  # 3
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",  # 4 dup
    "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,,United Kingdom",  # 5 no cust
    "C536379,85123A,WHITE HANGING HEART,-2,2010-12-01 09:41:00,2.55,17850.0,United Kingdom",  # 6
    "536370,POST,POSTAGE,3,2010-12-01 08:45:00,18.0,12583.0,France",  # 7 non-product
    "536371,22728,ALARM CLOCK BAKELIKE PINK,24,2010-12-01 08:45:00,0.0,12583.0,France",  # 8
    "536372,85123a,WHITE HANGING HEART ,4,2010-12-02 10:00:00,2.55,12347.0,Iceland",  # 9
    '536373,22086,"PAPER CHAIN KIT, 50\'S CHRISTMAS",12,2010-12-03 11:00:00,2.95,12662.0,Germany',
    "536365,22752,SET 7 BABUSHKA NESTING BOXES,2,2010-12-01 08:26:00,7.65,17850.0,United Kingdom",
    "536374,22752,SET 7 BABUSHKA NESTING BOXES,abc,2010-12-03 11:00:00,7.65,12662.0,Germany",
    "536375,22752,SET 7 BABUSHKA NESTING BOXES,-1,2010-12-03 11:05:00,7.65,12662.0,Germany",
    "536373,22752,SET 7 BABUSHKA NESTING BOXES,1,2010-12-03 11:00:00,7.65,17850.0,Germany",
]
SMALL_REJECTED = {
    4: R_DUPLICATE,
    5: R_NO_CUSTOMER,
    7: R_NON_PRODUCT,
    8: R_PRICE,
    12: R_MALFORMED,
    13: R_SALE_QUANTITY,
    14: R_CUSTOMER_CONFLICT,
}


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pq.read_table(folder / f"{name}.parquet").to_pandas()


def _write_small(path: Path) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write("\n".join([HEADER, *SMALL_LINES]) + "\n")
    return path


@pytest.fixture
def small(tmp_path: Path):
    csv = _write_small(tmp_path / "small.csv.gz")
    out = tmp_path / "out"
    return convert_online_retail(csv, out), out


# ------------------------------------------------------------------ hand-made file


def test_small_every_line_mapped_or_rejected_with_its_reason(small) -> None:
    report, out = small
    assert report.input_lines == len(SMALL_LINES)
    assert report.mapped_lines + report.rejected_lines == report.input_lines
    rejected = _read(out, "rejected")
    assert dict(zip(rejected["line"], rejected["reason"], strict=True)) == SMALL_REJECTED
    assert report.rejected_by_reason == {r: 1 for r in SMALL_REJECTED.values()}
    lines = _read(out, "order_lines")
    assert len(lines) == report.mapped_lines == len(SMALL_LINES) - len(SMALL_REJECTED)


def test_small_rejected_rows_keep_original_fields_and_details(small) -> None:
    _, out = small
    rejected = _read(out, "rejected").set_index("line")
    assert rejected.loc[4, "reason_detail"] == "exact duplicate of line 3"
    assert rejected.loc[7, "reason_detail"] == "non-product code POST"
    post = rejected.loc[7]
    original = SMALL_LINES[7 - 2].split(",")
    assert [post[c] for c in HEADER.split(",")] == original
    assert rejected.loc[5, "CustomerID"] == ""
    assert "Quantity" in rejected.loc[12, "reason_detail"]


def test_small_cancellation_is_a_return_with_positive_quantity(small) -> None:
    _, out = small
    orders = _read(out, "orders").set_index("order_id")
    lines = _read(out, "order_lines")
    assert orders.loc["C536379", "status"] == "returned"
    assert orders.loc["C536379", "client_id"] == "17850"
    ret = lines[lines["order_id"] == "C536379"]
    assert ret["quantity"].tolist() == [2.0]
    assert ret["product_id"].tolist() == ["85123A"]
    assert set(orders.drop(index="C536379")["status"]) == {"completed"}


def test_small_orders_lines_and_dates(small) -> None:
    _, out = small
    orders = _read(out, "orders").set_index("order_id")
    assert sorted(orders.index) == ["536365", "536372", "536373", "C536379"]
    assert str(orders.loc["536373", "order_date"]) == "2010-12-03"
    assert orders.loc["536365", "updated_at"] == pd.Timestamp("2010-12-01 08:26:00")
    lines = _read(out, "order_lines")
    inv = lines[lines["order_id"] == "536365"].sort_values("line_no")
    # the duplicate (line 4) is not numbered; the later line 11 continues the invoice
    assert inv["line_no"].tolist() == [1, 2, 3]
    assert inv["product_id"].tolist() == ["85123A", "71053", "22752"]
    assert lines["unit_cost"].isna().all()
    assert (lines["discount"] == 0).all()
    # 85123a is written in upper case
    assert lines.loc[lines["order_id"] == "536372", "product_id"].tolist() == ["85123A"]


def test_small_clients_products_and_empty_invoices(small) -> None:
    report, out = small
    clients = _read(out, "clients").set_index("client_id")
    # 12583 had only rejected lines (postage, zero price): a client without orders
    assert sorted(clients.index) == ["12347", "12583", "12662", "17850"]
    assert report.clients_without_orders == 1
    assert clients["segment"].to_dict() == {
        "12347": "Rest of world",
        "12583": "EU",
        "12662": "EU",
        "17850": "United Kingdom",
    }
    assert clients.loc["12583", "region"] == "France"
    assert clients.loc["17850", "client_name"] == "Customer 17850"
    assert clients.loc["17850", "created_at"] == pd.Timestamp("2010-12-01 08:26:00")
    # client dates come from every line with a valid customer id, rejected or not
    # (line 14, rejected for its invoice's customer, is 17850's latest)
    assert clients.loc["17850", "updated_at"] == pd.Timestamp("2010-12-03 11:00:00")
    assert clients.loc["17850", "region"] == "United Kingdom"  # country of its first line
    assert clients[["account_manager_id", "declared_tier"]].isna().all().all()
    products = _read(out, "products").set_index("product_id")
    assert products.loc["85123A", "product_name"] == "WHITE HANGING HEART"
    assert products.loc["85123A", "updated_at"] == pd.Timestamp("2010-12-02 10:00:00")
    assert products.loc["22086", "product_name"] == "PAPER CHAIN KIT, 50'S CHRISTMAS"
    assert "22728" not in products.index  # seen only on a rejected line
    invoices = pq.read_table(out / "invoices.parquet")
    assert invoices.num_rows == 0
    assert invoices.schema.names == [c.name for c in tables_of("erp")[-1].columns]


def test_small_net_revenue_follows_the_domain_rule(small) -> None:
    report, _ = small
    expected = 6 * 2.55 + 6 * 3.39 + 2 * 7.65 - 2 * 2.55 + 4 * 2.55 + 12 * 2.95
    assert report.net_revenue_mapped == pytest.approx(expected, abs=1e-9)


def test_small_blocks_smaller_than_the_file_give_the_same_result(tmp_path: Path) -> None:
    csv = _write_small(tmp_path / "small.csv.gz")
    whole = convert_online_retail(csv, tmp_path / "whole")
    tiny = convert_online_retail(csv, tmp_path / "tiny", block_bytes=256)
    assert tiny.rejected_by_reason == whole.rejected_by_reason
    for name in ("orders", "order_lines", "clients", "products", "rejected"):
        a = pq.read_table(tmp_path / "whole" / f"{name}.parquet")
        b = pq.read_table(tmp_path / "tiny" / f"{name}.parquet")
        keys = [(c, "ascending") for c in a.schema.names]
        assert a.sort_by(keys).equals(b.sort_by(keys)), name


def test_missing_file_and_wrong_columns(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        convert_online_retail(tmp_path / "absent.csv.gz", tmp_path / "out")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="CustomerID"):
        convert_online_retail(bad, tmp_path / "out")


def test_command_line_prints_the_report(tmp_path: Path, capsys) -> None:
    csv = _write_small(tmp_path / "small.csv.gz")
    assert main(["--out", str(tmp_path / "cli"), "--csv", str(csv)]) == 0
    printed = capsys.readouterr().out
    assert "input lines:" in printed and f"{len(SMALL_LINES)}" in printed
    assert R_NO_CUSTOMER in printed and "peak RSS" in printed
    assert (tmp_path / "cli" / "orders.parquet").is_file()
    assert main(["--out", str(tmp_path / "cli2"), "--csv", str(tmp_path / "nope.csv")]) == 2


# ------------------------------------------------------------------ the real export


def test_absent_export_skips_or_fails_under_the_switch(tmp_path: Path, monkeypatch) -> None:
    """Absent export: a skip saying where it looked; KAM_REQUIRE_ONLINE_RETAIL=1 (.ci/run)
    makes it a failure naming the path and the variables. Present: its path, either way."""
    absent = tmp_path / "absent.csv.gz"
    monkeypatch.setenv("KAM_ONLINE_RETAIL_CSV", str(absent))
    monkeypatch.delenv("KAM_REQUIRE_ONLINE_RETAIL", raising=False)
    assert online_retail_csv_path() == absent
    with pytest.raises(pytest.skip.Exception, match="KAM_ONLINE_RETAIL_CSV") as skipped:
        require_online_retail_csv()
    assert str(absent) in str(skipped.value)

    monkeypatch.setenv("KAM_REQUIRE_ONLINE_RETAIL", "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        require_online_retail_csv()
    message = str(failed.value)
    assert message.startswith("KAM_REQUIRE_ONLINE_RETAIL=1 but "), message
    assert str(absent) in message and "KAM_ONLINE_RETAIL_CSV" in message

    present = _write_small(absent)
    assert require_online_retail_csv() == present
    monkeypatch.delenv("KAM_REQUIRE_ONLINE_RETAIL")
    assert require_online_retail_csv() == present

    monkeypatch.setenv("KAM_ONLINE_RETAIL_CSV", " ")  # unset in effect: the default beside the repo
    default = online_retail_csv_path().as_posix()
    assert default.endswith("/shared/data/online_retail/online_retail.csv.gz"), default


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    csv = require_online_retail_csv()
    out = tmp_path_factory.mktemp("online_retail")
    report = convert_online_retail(csv, out)
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    raw.index = raw.index + 2  # file line numbers, the header being line 1
    return report, out, raw


def test_real_conservation(real) -> None:
    report, out, raw = real
    assert report.input_lines == len(raw) == 541_909
    rejected = _read(out, "rejected")
    lines = pq.read_metadata(out / "order_lines.parquet").num_rows
    assert len(rejected) == report.rejected_lines
    assert lines == report.mapped_lines
    assert lines + len(rejected) == len(raw)
    assert rejected["line"].is_unique
    assert set(rejected["line"]) <= set(raw.index)
    assert rejected["reason"].value_counts().to_dict() == report.rejected_by_reason
    # the rejected rows carry the original fields of their line
    sample = rejected.sample(n=500, random_state=1).set_index("line")
    assert (sample[raw.columns] == raw.loc[sample.index, raw.columns]).all().all()


def test_real_known_totals(real) -> None:
    report, out, raw = real
    clients = _read(out, "clients")
    assert len(clients) == 4_372
    assert set(clients["client_id"]) == {c.removesuffix(".0") for c in raw["CustomerID"] if c != ""}
    rejected = _read(out, "rejected")
    no_customer = rejected.loc[rejected["reason"] == R_NO_CUSTOMER, "line"]
    assert len(no_customer) == 135_080
    assert set(no_customer) == set(raw.index[raw["CustomerID"] == ""])
    assert report.net_revenue_mapped + report.net_revenue_rejected == pytest.approx(
        9_747_747.93, abs=0.01
    )


def test_real_contract_conformance(real) -> None:
    _, out, _ = real
    frames = {}
    for table in tables_of("erp"):
        arrow = pq.read_table(out / f"{table.name}.parquet")
        assert arrow.schema.names == table.column_names, table.name
        for col in table.columns:
            assert arrow.schema.field(col.name).type == EXPECTED_ARROW[col.type], (
                f"{table.name}.{col.name}"
            )
            if not col.nullable:
                assert arrow.column(col.name).null_count == 0, f"{table.name}.{col.name}"
            if col.allowed:
                values = set(arrow.column(col.name).drop_null().to_pylist())
                assert values <= set(col.allowed), f"{table.name}.{col.name}"
        df = arrow.to_pandas()
        assert not df.duplicated(list(table.primary_key)).any(), table.name
        frames[table.name] = df
    orders, lines = frames["orders"], frames["order_lines"]
    assert set(orders["client_id"]) <= set(frames["clients"]["client_id"])
    assert set(lines["order_id"]) == set(orders["order_id"])
    assert set(lines["product_id"]) <= set(frames["products"]["product_id"])
    assert len(frames["invoices"]) == 0
    assert (lines["quantity"] > 0).all() and (lines["unit_price"] > 0).all()
    is_credit_note = orders["order_id"].str.startswith("C")
    assert (orders.loc[is_credit_note, "status"] == "returned").all()
    assert (orders.loc[~is_credit_note, "status"] == "completed").all()
    assert frames["clients"]["segment"].isin(["United Kingdom", "EU", "Rest of world"]).all()


def test_real_net_revenue_matches_the_mapped_input_lines(real) -> None:
    report, out, raw = real
    rejected_lines = set(_read(out, "rejected")["line"])
    kept = raw.loc[~raw.index.isin(rejected_lines)]
    expected = (kept["Quantity"].astype(float) * kept["UnitPrice"].astype(float)).sum()
    lines = _read(out, "order_lines").merge(_read(out, "orders"), on="order_id")
    sign = lines["status"].map({"completed": 1.0, "returned": -1.0, "cancelled": 0.0})
    net = (sign * (lines["quantity"] * lines["unit_price"] - lines["discount"])).sum()
    assert net == pytest.approx(expected, abs=0.01)
    assert report.net_revenue_mapped == pytest.approx(expected, abs=0.01)


def test_real_folder_is_readable_by_the_folder_source(real) -> None:
    from pipelines.extract.connect import open_source

    _, out, _ = real
    source = open_source("erp", str(out))
    try:
        source.check_contract()
        order_table = next(t for t in tables_of("erp") if t.name == "orders")
        rows = sum(b.num_rows for b in source.iter_batches(order_table, None, 50_000))
    finally:
        source.close()
    assert rows == pq.read_metadata(out / "orders.parquet").num_rows
