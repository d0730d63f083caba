"""python -m pipelines.generator --out DIR [--clients N] [--years Y] [--seed S] [--format F]"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from pipelines.generator.core import generate_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.generator", description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--clients", type=int, default=600)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--end-date", type=date.fromisoformat, default=date(2026, 9, 30))
    parser.add_argument("--format", choices=("sqlite", "parquet"), default="sqlite")
    parser.add_argument("--erp-url", default=None, help="SQLAlchemy URL for the ERP tables")
    parser.add_argument("--crm-url", default=None, help="SQLAlchemy URL for the CRM tables")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    record = generate_demo(
        args.out,
        clients=args.clients,
        years=args.years,
        seed=args.seed,
        end_date=args.end_date,
        fmt=args.format,
        erp_url=args.erp_url,
        crm_url=args.crm_url,
    )
    seconds = time.perf_counter() - started
    for name, rows in record["row_counts"].items():
        print(f"{name:>14}: {rows:>12,d} rows")
    print(f"planted groups: {', '.join(f'{k}={v}' for k, v in record['counts'].items())}")
    print(f"written to {args.out} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
