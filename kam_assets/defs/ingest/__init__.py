"""Raw layer: one asset per contract table (key [system, table]), their GX checks and the
batch-level gates (quarantine share, empty tables, row-count drops)."""

from __future__ import annotations

import dagster as dg


def build_defs() -> dg.Definitions:
    from kam_assets.defs.ingest.assets import extract_sources
    from kam_assets.defs.ingest.checks import raw_quality_checks
    from kam_assets.defs.ingest.gates import quality_gates

    return dg.Definitions(
        assets=[extract_sources], asset_checks=[raw_quality_checks(), quality_gates]
    )
