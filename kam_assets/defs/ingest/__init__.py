"""Raw layer: one asset per contract table (key [system, table]) and their GX checks."""

from __future__ import annotations

import dagster as dg


def build_defs() -> dg.Definitions:
    from kam_assets.defs.ingest.assets import extract_sources
    from kam_assets.defs.ingest.checks import raw_quality_checks

    return dg.Definitions(assets=[extract_sources], asset_checks=[raw_quality_checks])
