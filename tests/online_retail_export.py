"""Where the tests find the UCI Online Retail export, and what its absence means.

The export is ``$KAM_ONLINE_RETAIL_CSV``, else ``../shared/data/online_retail/online_retail.csv.gz``
beside the repository. When it is absent the real-data tests skip, saying where they looked,
unless KAM_REQUIRE_ONLINE_RETAIL=1 (set by .ci/run, like KAM_REQUIRE_POSTGRES), which turns the
skip into a failure naming the path and the variables: in CI the real-data tests cannot "pass"
without running.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"


def online_retail_csv_path() -> Path:
    """Where the export is looked for (it may be absent)."""
    env = os.environ.get("KAM_ONLINE_RETAIL_CSV", "").strip()
    return Path(env) if env else DEFAULT_CSV


def require_online_retail_csv() -> Path:
    """The export's path; skips the test when it is absent, or fails under
    KAM_REQUIRE_ONLINE_RETAIL=1."""
    csv = online_retail_csv_path()
    if csv.is_file():
        return csv
    reason = (
        f"UCI Online Retail export not found at {csv} "
        "(set KAM_ONLINE_RETAIL_CSV or place it in ../shared/data/online_retail/)"
    )
    if os.environ.get("KAM_REQUIRE_ONLINE_RETAIL") == "1":
        pytest.fail(f"KAM_REQUIRE_ONLINE_RETAIL=1 but {reason}")
    pytest.skip(reason)
