"""Adapter: the UCI Online Retail export -> an ERP source folder (orders only, no CRM).

Input: the CSV (optionally gzipped) of the UCI "Online Retail" data set (Chen, Sain
and Guo 2012, CC BY 4.0) with the columns InvoiceNo, StockCode, Description, Quantity,
InvoiceDate, UnitPrice, CustomerID, Country; one line per invoice line.

Output (``out_dir``): ``clients``, ``products``, ``orders``, ``order_lines`` and
``invoices`` as Parquet files with exactly the contract's columns and types
(``pipelines.contract``: identifiers as text, dates date32, timestamps
``timestamp[us]``), plus ``rejected.parquet``: every input line that could not be
mapped, with its original fields (text as read), its ``line`` number and a ``reason``.
Point the pipeline at it with ``KAM_ERP_URL=<out_dir>`` and no CRM. The CSV is read
in blocks (``pyarrow.csv.open_csv``); memory grows with the number of distinct
invoices, customers and products, plus 16 bytes per mapped line for duplicate
detection, never with the whole file.

Line numbers: ``line`` is the line number in the CSV file, the header being line 1
(so the first data line is line 2; no record of this export spans several lines).

Rejections, checked in this order; a line gets the first reason that applies
(``reason`` is the category counted in the report, ``reason_detail`` the specifics):

1. ``no customer id``: CustomerID empty. The line cannot be attributed to a client.
2. ``invalid customer id``: CustomerID not digits (optionally followed by ``.0``).
3. ``malformed line``: empty InvoiceNo, or Quantity, UnitPrice or InvoiceDate unreadable
   (dates ``YYYY-MM-DD HH:MM[:SS]``, or ``M/D/YYYY H:MM`` as in the original export).
4. ``unrecognised invoice number``: InvoiceNo not digits with an optional ``C`` prefix
   (the ``A...`` bad-debt adjustments).
5. ``non-product code``: StockCode does not match the product pattern: five digits
   followed by at most two letters (``85123A``, ``15056BL``). This rejects postage
   (POST, DOT, C2 carriage), manual adjustments (M), discounts (D), samples (S), bank,
   Amazon and CRUK fees/commissions, gift vouchers, PADS and the DCGS... codes. They
   are fees, adjustments or vouchers rather than goods, their signs are inconsistent
   (a commission is a cost to the shop, a discount a negative sale), and counting them
   would distort per-client revenue; the report lists them per code.
6. ``exact duplicate``: all eight fields equal, as text, to an earlier line that reached
   this check; the first one is kept, the repeats are rejected ("exact duplicate of
   line N"). Lines are compared through a 64-bit hash of their fields (a false match
   is about 1 in 10^8 for a file of this size).
7. ``zero or negative price``: UnitPrice <= 0 (free samples, corrections).
8. ``zero or negative quantity on a sale`` (regular invoice with Quantity <= 0) and
   ``zero or positive quantity on a cancellation`` (C invoice with Quantity >= 0).
9. ``customer differs within invoice``: a line whose customer is not that of the
   invoice's first mapped line (an order has one client).

Every input line is either mapped (one order line) or rejected (one rejected row):
input lines = mapped lines + rejected lines, checked before the report is returned.

Mapping of the mapped lines:

* orders: one per InvoiceNo, ``order_id`` = InvoiceNo as written (``C536379`` stays
  distinct from ``536379``). A ``C`` invoice is a cancellation of goods already shipped,
  i.e. a credit note: status ``returned`` with POSITIVE quantities, so the domain rule
  (returned orders count negative) gives the same net revenue as the signed file.
  Other invoices: ``completed``. ``order_date`` = date of the invoice's earliest
  InvoiceDate, ``updated_at`` = its latest (a few invoices span a minute).
* order_lines: ``line_no`` = position of the line among the invoice's mapped lines, in
  file order (1, 2, ...); ``product_id`` = StockCode in upper case (``85099b`` and
  ``85099B`` are the same article); ``quantity`` = |Quantity|; ``unit_price`` =
  UnitPrice; ``unit_cost`` null (unknown: margins stay unknown, not invented);
  ``discount`` 0.
* clients: every valid customer id of the file (lines passing checks 1-3), even when
  all its lines were rejected later (e.g. only postage): such a client simply has no
  order. ``client_id`` = CustomerID without ``.0``; ``client_name`` = ``Customer <id>``;
  ``region`` = Country of the customer's first line (earliest InvoiceDate, then line);
  ``segment`` = a grouping of that country: ``United Kingdom``, ``EU`` (the 27 EU
  member states of 2011, EIRE and "European Community") or ``Rest of world`` (everything
  else, including "Unspecified"). Countries are too small to learn purchase cadence
  norms from (34 of the 37 customer countries have fewer than 30 customers); the three
  groups are not (3,950 / 340 / 82 clients).
  ``industry``, ``account_manager_id``, ``declared_tier``, ``payment_terms_days`` null;
  ``created_at`` = first InvoiceDate, ``updated_at`` = last InvoiceDate of its lines.
* products: one per product_id found on mapped lines; ``product_name`` = its most frequent
  non-blank Description there (trimmed; ties: alphabetically first); ``category`` null;
  ``updated_at`` = the last InvoiceDate it was seen on.
* invoices: written EMPTY (contract schema, no rows). The export has no payment data;
  invoices with an invented ``paid_date`` (or none, i.e. all unpaid) would create
  payment-discipline signals that the data does not support.

Times: InvoiceDate is the shop's wall-clock time (UK); it is written unchanged as a
naive timestamp (the contract's timestamps are UTC: one hour early during British
Summer Time). Dates are unaffected (all invoices fall between 06:00 and 21:00).

Command line: ``python -m pipelines.adapters.online_retail --out DIR [--csv PATH]``.
The default CSV is ``$KAM_ONLINE_RETAIL_CSV``, else ``../shared/data/online_retail/
online_retail.csv.gz`` relative to the repository root.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.contract import ARROW_TYPES, get_table

ENV_CSV = "KAM_ONLINE_RETAIL_CSV"
SOURCE_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
OUTPUT_TABLES = ("clients", "products", "orders", "order_lines", "invoices")
REJECTED_FILE = "rejected.parquet"

PRODUCT_CODE_PATTERN = r"\d{5}[A-Za-z]{0,2}"
CUSTOMER_ID_PATTERN = r"\d+(?:\.0+)?"
INVOICE_PATTERN = r"C?\d+"

R_NO_CUSTOMER = "no customer id"
R_BAD_CUSTOMER = "invalid customer id"
R_MALFORMED = "malformed line"
R_BAD_INVOICE = "unrecognised invoice number"
R_NON_PRODUCT = "non-product code"
R_DUPLICATE = "exact duplicate"
R_PRICE = "zero or negative price"
R_SALE_QUANTITY = "zero or negative quantity on a sale"
R_RETURN_QUANTITY = "zero or positive quantity on a cancellation"
R_CUSTOMER_CONFLICT = "customer differs within invoice"
#: every rejection reason, in the order the checks apply
REASONS = (
    R_NO_CUSTOMER,
    R_BAD_CUSTOMER,
    R_MALFORMED,
    R_BAD_INVOICE,
    R_NON_PRODUCT,
    R_DUPLICATE,
    R_PRICE,
    R_SALE_QUANTITY,
    R_RETURN_QUANTITY,
    R_CUSTOMER_CONFLICT,
)

SEGMENT_UK = "United Kingdom"
SEGMENT_EU = "EU"
SEGMENT_REST = "Rest of world"
#: EU member states in 2011 (the data's year) as the export spells them; the UK is its own segment
EU_COUNTRIES = frozenset(
    {
        "Austria",
        "Belgium",
        "Bulgaria",
        "Cyprus",
        "Czech Republic",
        "Denmark",
        "EIRE",
        "Ireland",
        "Estonia",
        "European Community",
        "Finland",
        "France",
        "Germany",
        "Greece",
        "Hungary",
        "Italy",
        "Latvia",
        "Lithuania",
        "Luxembourg",
        "Malta",
        "Netherlands",
        "Poland",
        "Portugal",
        "Romania",
        "Slovakia",
        "Slovenia",
        "Spain",
        "Sweden",
    }
)

REJECTED_SCHEMA = pa.schema(
    [pa.field("line", pa.int64())]
    + [pa.field(c, pa.string()) for c in SOURCE_COLUMNS]
    + [pa.field("reason", pa.string()), pa.field("reason_detail", pa.string())]
)

_US_PER_DAY = 86_400_000_000


def segment_of(country: str) -> str:
    """The client segment for a country name as written in the export."""
    if country == "United Kingdom":
        return SEGMENT_UK
    if country in EU_COUNTRIES:
        return SEGMENT_EU
    return SEGMENT_REST


def contract_schema(table_name: str) -> pa.Schema:
    """Arrow schema of an ERP contract table (column order and types of the contract)."""
    table = get_table("erp", table_name)
    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in table.columns]
    )


def default_csv_path() -> Path:
    """``$KAM_ONLINE_RETAIL_CSV``, else ``../shared/data/online_retail/online_retail.csv.gz``
    relative to the repository root."""
    env = os.environ.get(ENV_CSV, "").strip()
    if env:
        return Path(env).expanduser()
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class ConversionReport:
    source: str
    out_dir: str
    input_lines: int = 0
    mapped_lines: int = 0
    rejected_lines: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    non_product_codes: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    clients_without_orders: int = 0
    net_revenue_mapped: float = 0.0  # domain rule: completed +, returned -
    net_revenue_rejected: float = 0.0  # Quantity x UnitPrice of rejected lines that parse
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def balanced(self) -> bool:
        """Every input line is accounted for: mapped or rejected, never both, never neither."""
        return (
            self.input_lines == self.mapped_lines + self.rejected_lines
            and self.rejected_lines == sum(self.rejected_by_reason.values())
            and self.mapped_lines == self.tables.get("order_lines", -1)
        )

    def to_dict(self) -> dict:
        return asdict(self) | {"balanced": self.balanced}

    def format(self) -> str:
        out = [
            f"Online Retail -> ERP source folder {self.out_dir}",
            f"  source: {self.source}",
            f"  input lines:    {self.input_lines:>9,}",
            f"  mapped lines:   {self.mapped_lines:>9,}",
            f"  rejected lines: {self.rejected_lines:>9,}"
            f"  (input = mapped + rejected: {'yes' if self.balanced else 'NO'})",
            "  rows per table:",
        ]
        out += [f"    {name:<12} {rows:>9,}" for name, rows in self.tables.items()]
        out.append(f"    ({self.clients_without_orders:,} clients have no mapped order)")
        out.append("  rejected per reason:")
        out += [f"    {reason:<44} {n:>9,}" for reason, n in self.rejected_by_reason.items()]
        if self.non_product_codes:
            codes = ", ".join(f"{c} {n:,}" for c, n in self.non_product_codes.items())
            out.append(f"  non-product codes: {codes}")
        total = self.net_revenue_mapped + self.net_revenue_rejected
        out += [
            f"  net revenue: mapped {self.net_revenue_mapped:,.2f}, "
            f"rejected {self.net_revenue_rejected:,.2f}, total {total:,.2f}",
            f"  seconds: {self.seconds:.1f}, peak RSS: {self.peak_rss_mb:.0f} MiB",
        ]
        return "\n".join(out)


@dataclass(slots=True)
class _Order:
    client_id: str
    first_us: int
    last_us: int
    status: str
    lines: int


@dataclass(slots=True)
class _Client:
    first_us: int
    first_line: int
    country: str
    last_us: int


@dataclass(slots=True)
class _Product:
    last_us: int
    names: Counter = field(default_factory=Counter)


class _SeenLines:
    """Content hash -> line of first occurrence, as two sorted arrays (16 bytes a line)."""

    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.uint64)
        self.lines = np.empty(0, dtype=np.int64)

    def first_lines(self, hashes: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """For each row (lines ascending) the line of the first row with the same content,
        which is its own line if it is new; remembers the new ones."""
        if len(hashes) == 0:
            return lines.copy()
        first = pd.Series(lines).groupby(hashes, sort=False).transform("first").to_numpy()
        found = np.zeros(len(hashes), dtype=bool)
        if len(self.hashes):
            idx = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
            found = self.hashes[idx] == hashes
            first = np.where(found, self.lines[idx], first)
        new = ~found & (first == lines)
        merged_h = np.concatenate([self.hashes, hashes[new]])
        merged_l = np.concatenate([self.lines, lines[new]])
        order = np.argsort(merged_h, kind="stable")
        self.hashes, self.lines = merged_h[order], merged_l[order]
        return first


def _parse_times(text: pd.Series) -> np.ndarray:
    """Microseconds since the epoch (int64); NaT where unreadable (checked with ``_NAT``)."""
    ts = pd.to_datetime(text, format="ISO8601", errors="coerce")
    missing = ts.isna() & (text != "")
    if missing.any():
        ts = ts.copy()
        ts[missing] = pd.to_datetime(text[missing], format="%m/%d/%Y %H:%M", errors="coerce")
    return ts.to_numpy(dtype="datetime64[us]").view(np.int64)


_NAT = np.datetime64("NaT").astype("datetime64[us]").view(np.int64)


def _numbers(text: pd.Series) -> np.ndarray:
    """Floats; NaN where unreadable. Fast path: Arrow's cast, when every value reads."""
    try:
        return pa.array(text, pa.string()).cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        values = pd.to_numeric(text, errors="coerce")
        return pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)


def _malformed(b: _Block) -> np.ndarray:
    """Per line: '' if readable, else 'unreadable <fields>'."""
    problems = np.full(len(b.lines), "", dtype=object)
    checks = (
        (b.invoice == "", "InvoiceNo"),
        (~np.isfinite(b.qty), "Quantity"),
        (~np.isfinite(b.price), "UnitPrice"),
        (b.ts == _NAT, "InvoiceDate"),
    )
    for mask, name in checks:
        for i in np.flatnonzero(mask):
            problems[i] = f"{problems[i]}, {name}" if problems[i] else f"unreadable {name}"
    return problems


def _timestamps(values_us: Sequence[int] | np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values_us, dtype=np.int64), pa.int64()).cast(pa.timestamp("us"))


def _dates(values_us: Sequence[int] | np.ndarray) -> pa.Array:
    days = np.floor_divide(np.asarray(values_us, dtype=np.int64), _US_PER_DAY).astype(np.int32)
    return pa.array(days, pa.int32()).cast(pa.date32())


@dataclass
class _Block:
    """One block of input lines, parsed (arrays of equal length, one item per line)."""

    lines: np.ndarray  # file line numbers
    invoice: np.ndarray  # InvoiceNo, trimmed
    client: np.ndarray  # CustomerID without '.0'
    code: np.ndarray  # StockCode, trimmed
    description: np.ndarray  # Description, trimmed
    country: np.ndarray  # Country, trimmed
    qty: np.ndarray  # float, NaN if unreadable
    price: np.ndarray  # float, NaN if unreadable
    ts: np.ndarray  # microseconds since the epoch, _NAT if unreadable
    is_return: np.ndarray  # InvoiceNo starts with C


class _Rejections:
    """Reason per line of a block; a line keeps the first reason it gets."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)
        self.detail = np.full(n, None, dtype=object)
        self.open = np.ones(n, dtype=bool)  # not rejected (yet)

    def reject(self, mask: np.ndarray, label: str, details: np.ndarray | str) -> None:
        hit = self.open & mask
        self.reason[hit] = label
        self.detail[hit] = details[hit] if isinstance(details, np.ndarray) else details
        self.open[hit] = False


class _Converter:
    def __init__(self, out_dir: Path) -> None:
        self.orders: dict[str, _Order] = {}
        self.clients: dict[str, _Client] = {}
        self.products: dict[str, _Product] = {}
        self.seen = _SeenLines()
        self.reasons: Counter = Counter()
        self.codes: Counter = Counter()
        self.input_lines = 0
        self.mapped_lines = 0
        self.rejected_lines = 0
        self.net_mapped = 0.0
        self.net_rejected = 0.0
        self.lines_schema = contract_schema("order_lines")
        self.lines_writer = pq.ParquetWriter(_tmp(out_dir, "order_lines"), self.lines_schema)
        self.rejected_writer = pq.ParquetWriter(_tmp(out_dir, "rejected"), REJECTED_SCHEMA)

    def close(self) -> None:
        self.lines_writer.close()
        self.rejected_writer.close()

    # ------------------------------------------------------------------ one block
    def process(self, batch: pa.RecordBatch, first_line: int) -> None:
        n = batch.num_rows
        if n == 0:
            return
        df = batch.to_pandas()
        invoice = df["InvoiceNo"].str.strip()
        customer = df["CustomerID"].str.strip()
        code = df["StockCode"].str.strip()
        b = _Block(
            lines=np.arange(first_line, first_line + n, dtype=np.int64),
            invoice=invoice.to_numpy(dtype=object),
            client=customer.str.replace(r"\.0+$", "", regex=True).to_numpy(dtype=object),
            code=code.to_numpy(dtype=object),
            description=df["Description"].str.strip().to_numpy(dtype=object),
            country=df["Country"].str.strip().to_numpy(dtype=object),
            qty=_numbers(df["Quantity"].str.strip()),
            price=_numbers(df["UnitPrice"].str.strip()),
            ts=_parse_times(df["InvoiceDate"].str.strip()),
            is_return=invoice.str.startswith("C").to_numpy(dtype=bool),
        )
        r = _Rejections(n)
        r.reject((customer == "").to_numpy(dtype=bool), R_NO_CUSTOMER, R_NO_CUSTOMER)
        bad_customer = ~customer.str.fullmatch(CUSTOMER_ID_PATTERN).to_numpy(dtype=bool)
        r.reject(bad_customer, R_BAD_CUSTOMER, ("invalid customer id " + customer).to_numpy())
        malformed = _malformed(b)
        r.reject(malformed != "", R_MALFORMED, malformed)
        self._add_clients(b, r.open)

        bad_invoice = ~invoice.str.fullmatch(INVOICE_PATTERN).to_numpy(dtype=bool)
        r.reject(bad_invoice, R_BAD_INVOICE, ("unrecognised invoice number " + invoice).to_numpy())
        non_product = ~code.str.fullmatch(PRODUCT_CODE_PATTERN).to_numpy(dtype=bool)
        self.codes.update(b.code[r.open & non_product])
        r.reject(non_product, R_NON_PRODUCT, ("non-product code " + code).to_numpy())
        self._reject_duplicates(df, b, r)
        r.reject(b.price <= 0, R_PRICE, R_PRICE)
        r.reject(~b.is_return & (b.qty <= 0), R_SALE_QUANTITY, R_SALE_QUANTITY)
        r.reject(b.is_return & (b.qty >= 0), R_RETURN_QUANTITY, R_RETURN_QUANTITY)
        self._reject_customer_conflicts(b, r)

        self._map_lines(b, r.open)
        rejected = ~r.open
        if rejected.any():
            self._write_rejected(batch, b, rejected, r)
        self.input_lines += n

    def _reject_duplicates(self, df: pd.DataFrame, b: _Block, r: _Rejections) -> None:
        candidates = np.flatnonzero(r.open)
        if len(candidates) == 0:
            return
        # the raw text of all eight fields, as read
        hashes = pd.util.hash_pandas_object(df.iloc[candidates], index=False).to_numpy()
        first = self.seen.first_lines(hashes.astype(np.uint64), b.lines[candidates])
        dup = np.zeros(len(b.lines), dtype=bool)
        dup[candidates] = first != b.lines[candidates]
        first_of = np.zeros(len(b.lines), dtype=np.int64)
        first_of[candidates] = first
        details = np.full(len(b.lines), None, dtype=object)
        for i in np.flatnonzero(dup):
            details[i] = f"exact duplicate of line {first_of[i]}"
        r.reject(dup, R_DUPLICATE, details)

    def _reject_customer_conflicts(self, b: _Block, r: _Rejections) -> None:
        idx = np.flatnonzero(r.open)
        if len(idx) == 0:
            return
        inv, cli = b.invoice[idx], b.client[idx]
        first_in_block = pd.Series(cli).groupby(inv, sort=False).transform("first").to_numpy()
        pairs = zip(inv, first_in_block, strict=True)
        owners = [o.client_id if (o := self.orders.get(i)) is not None else f for i, f in pairs]
        expected = np.array(owners, dtype=object)
        conflict = np.zeros(len(b.lines), dtype=bool)
        conflict[idx] = cli != expected
        if not conflict.any():
            return
        details = np.full(len(b.lines), None, dtype=object)
        for i, owner in zip(idx, expected, strict=True):
            details[i] = f"customer {b.client[i]} on invoice {b.invoice[i]} of customer {owner}"
        r.reject(conflict, R_CUSTOMER_CONFLICT, details)

    def _add_clients(self, b: _Block, valid: np.ndarray) -> None:
        if not valid.any():
            return
        frame = pd.DataFrame(
            {
                "client": b.client[valid],
                "ts": b.ts[valid],
                "line": b.lines[valid],
                "country": b.country[valid],
            }
        ).sort_values(["ts", "line"], kind="stable")
        agg = frame.groupby("client", sort=False).agg(
            first_us=("ts", "first"),
            first_line=("line", "first"),
            country=("country", "first"),
            last_us=("ts", "max"),
        )
        for cid, first_us, first_line, country, last_us in agg.itertuples(name=None):
            known = self.clients.get(cid)
            if known is None:
                self.clients[cid] = _Client(int(first_us), int(first_line), country, int(last_us))
                continue
            if (first_us, first_line) < (known.first_us, known.first_line):
                known.first_us = int(first_us)
                known.first_line = int(first_line)
                known.country = country
            known.last_us = max(known.last_us, int(last_us))

    def _map_lines(self, b: _Block, mapped: np.ndarray) -> None:
        idx = np.flatnonzero(mapped)
        if len(idx) == 0:
            return
        inv, ts, is_ret = b.invoice[idx], b.ts[idx], b.is_return[idx]
        pid = pd.Series(b.code[idx], dtype=object).str.upper().to_numpy(dtype=object)
        quantity = np.where(is_ret, -b.qty[idx], b.qty[idx])  # credit notes: positive
        unit_price = b.price[idx]
        before = np.array(
            [o.lines if (o := self.orders.get(i)) is not None else 0 for i in inv], np.int64
        )
        line_no = before + pd.Series(inv).groupby(inv, sort=False).cumcount().to_numpy() + 1

        frame = pd.DataFrame({"inv": inv, "cli": b.client[idx], "ts": ts, "ret": is_ret})
        agg = frame.groupby("inv", sort=False).agg(
            cli=("cli", "first"),
            first_us=("ts", "min"),
            last_us=("ts", "max"),
            ret=("ret", "first"),
            lines=("ts", "size"),
        )
        for order_id, cid, first_us, last_us, is_return, count in agg.itertuples(name=None):
            order = self.orders.get(order_id)
            if order is None:
                status = "returned" if is_return else "completed"
                self.orders[order_id] = _Order(cid, int(first_us), int(last_us), status, count)
            else:
                order.first_us = min(order.first_us, int(first_us))
                order.last_us = max(order.last_us, int(last_us))
                order.lines += int(count)

        prod = pd.DataFrame({"pid": pid, "desc": b.description[idx], "ts": ts})
        for pid_, last_us in prod.groupby("pid", sort=False)["ts"].max().items():
            known = self.products.get(pid_)
            if known is None:
                self.products[pid_] = _Product(int(last_us))
            else:
                known.last_us = max(known.last_us, int(last_us))
        named = prod[prod["desc"] != ""]
        for (pid_, name), count in named.groupby(["pid", "desc"], sort=False).size().items():
            self.products[pid_].names[name] += int(count)

        sign = np.where(is_ret, -1.0, 1.0)  # the domain rule: completed +, returned -
        self.net_mapped += float(np.sum(sign * quantity * unit_price))
        self.mapped_lines += len(idx)
        n = len(idx)
        arrays = [
            pa.array(inv, pa.string()),
            pa.array(line_no, pa.int64()),
            pa.array(pid, pa.string()),
            pa.array(quantity, pa.float64()),
            pa.array(unit_price, pa.float64()),
            pa.nulls(n, pa.float64()),
            pa.array(np.zeros(n), pa.float64()),
        ]
        self.lines_writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.lines_schema))

    def _write_rejected(
        self, batch: pa.RecordBatch, b: _Block, rejected: np.ndarray, r: _Rejections
    ) -> None:
        mask = pa.array(rejected)
        columns = [pa.array(b.lines[rejected], pa.int64())]
        columns += [batch.column(c).filter(mask) for c in SOURCE_COLUMNS]
        columns += [
            pa.array(r.reason[rejected], pa.string()),
            pa.array(r.detail[rejected], pa.string()),
        ]
        self.rejected_writer.write_batch(
            pa.RecordBatch.from_arrays(columns, schema=REJECTED_SCHEMA)
        )
        self.reasons.update(r.reason[rejected])
        self.rejected_lines += int(rejected.sum())
        self.net_rejected += float(np.nansum((b.qty * b.price)[rejected]))

    # ------------------------------------------------------------------ the end
    def write_dimensions(self, out_dir: Path) -> dict[str, int]:
        clients = sorted(self.clients.items())
        n = len(clients)
        none_text = pa.nulls(n, pa.string())
        client_table = pa.Table.from_arrays(
            [
                pa.array([cid for cid, _ in clients], pa.string()),
                pa.array([f"Customer {cid}" for cid, _ in clients], pa.string()),
                pa.array([segment_of(c.country) for _, c in clients], pa.string()),
                pa.array([c.country or None for _, c in clients], pa.string()),
                none_text,
                none_text,
                none_text,
                pa.nulls(n, pa.int64()),
                _timestamps([c.first_us for _, c in clients]),
                _timestamps([c.last_us for _, c in clients]),
            ],
            schema=contract_schema("clients"),
        )
        products = sorted(self.products.items())
        product_table = pa.Table.from_arrays(
            [
                pa.array([pid for pid, _ in products], pa.string()),
                pa.array([_most_frequent(p.names) for _, p in products], pa.string()),
                pa.nulls(len(products), pa.string()),
                _timestamps([p.last_us for _, p in products]),
            ],
            schema=contract_schema("products"),
        )
        orders = list(self.orders.items())
        order_table = pa.Table.from_arrays(
            [
                pa.array([oid for oid, _ in orders], pa.string()),
                pa.array([o.client_id for _, o in orders], pa.string()),
                _dates([o.first_us for _, o in orders]),
                pa.array([o.status for _, o in orders], pa.string()),
                _timestamps([o.last_us for _, o in orders]),
            ],
            schema=contract_schema("orders"),
        )
        invoice_table = contract_schema("invoices").empty_table()
        tables = {
            "clients": client_table,
            "products": product_table,
            "orders": order_table,
            "invoices": invoice_table,
        }
        for name, table in tables.items():
            pq.write_table(table, _tmp(out_dir, name))
        counts = {name: t.num_rows for name, t in tables.items()}
        counts["order_lines"] = self.mapped_lines
        return {name: counts[name] for name in OUTPUT_TABLES}


def _most_frequent(names: Counter) -> str | None:
    if not names:
        return None
    return min(names.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def _tmp(out_dir: Path, name: str) -> Path:
    return out_dir / f".{name}.parquet.part"


def _open_reader(csv_path: Path, block_bytes: int) -> pacsv.CSVStreamingReader:
    try:
        return pacsv.open_csv(
            csv_path,
            read_options=pacsv.ReadOptions(block_size=block_bytes, encoding="utf8"),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(SOURCE_COLUMNS),
                column_types=dict.fromkeys(SOURCE_COLUMNS, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, KeyError) as exc:
        raise ValueError(
            f"{csv_path}: not an Online Retail export (expected columns "
            f"{', '.join(SOURCE_COLUMNS)}): {exc}"
        ) from None


def convert_online_retail(
    csv_gz: Path, out_dir: Path, *, block_bytes: int = 4 << 20
) -> ConversionReport:
    """Convert the Online Retail CSV (gzipped or not) into an ERP source folder.

    Writes ``clients``, ``products``, ``orders``, ``order_lines``, ``invoices`` and
    ``rejected`` Parquet files into ``out_dir`` (created if needed; previous files of
    these names are replaced only once the conversion succeeded). Raises
    ``FileNotFoundError`` if the CSV is missing, ``ValueError`` if it lacks a column,
    ``RuntimeError`` if lines were lost (input != mapped + rejected).
    """
    start = time.perf_counter()
    csv_gz, out_dir = Path(csv_gz), Path(out_dir)
    if not csv_gz.is_file():
        raise FileNotFoundError(f"Online Retail CSV not found: {csv_gz}")
    out_dir.mkdir(parents=True, exist_ok=True)
    reader = _open_reader(csv_gz, block_bytes)
    converter = _Converter(out_dir)
    names = [*OUTPUT_TABLES, "rejected"]
    try:
        next_line = 2  # the header is line 1
        for batch in reader:
            converter.process(batch, next_line)
            next_line += batch.num_rows
        converter.close()
        tables = converter.write_dimensions(out_dir)
    except BaseException:
        converter.close()
        for name in names:
            _tmp(out_dir, name).unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    for name in names:
        os.replace(_tmp(out_dir, name), out_dir / f"{name}.parquet")

    ordered_reasons = {r: converter.reasons[r] for r in REASONS if converter.reasons[r]}
    with_orders = {o.client_id for o in converter.orders.values()}
    report = ConversionReport(
        source=str(csv_gz),
        out_dir=str(out_dir),
        input_lines=converter.input_lines,
        mapped_lines=converter.mapped_lines,
        rejected_lines=converter.rejected_lines,
        rejected_by_reason=ordered_reasons,
        non_product_codes=dict(converter.codes.most_common()),
        tables=tables,
        clients_without_orders=len(set(converter.clients) - with_orders),
        net_revenue_mapped=converter.net_mapped,
        net_revenue_rejected=converter.net_rejected,
    )
    if not report.balanced:
        raise RuntimeError(
            f"lines lost in conversion: input {report.input_lines} != mapped "
            f"{report.mapped_lines} + rejected {report.rejected_lines} "
            f"(per reason {sum(report.rejected_by_reason.values())})"
        )
    report.seconds = time.perf_counter() - start
    report.peak_rss_mb = peak_rss_mb()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.adapters.online_retail",
        description="Convert the UCI Online Retail export into an ERP source folder "
        "(use it with KAM_ERP_URL=<out> and no CRM).",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--csv",
        type=Path,
        default=None,
        help=f"Online Retail CSV(.gz); default ${ENV_CSV} or ../shared/data/online_retail/",
    )
    args = parser.parse_args(argv)
    csv_path = args.csv or default_csv_path()
    try:
        report = convert_online_retail(csv_path, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.format())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
