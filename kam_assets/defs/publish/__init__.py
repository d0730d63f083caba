"""Quality gate on the marts (blocking GX checks) and the publish of the warehouse."""

from __future__ import annotations

import dagster as dg


def build_defs() -> dg.Definitions:
    from kam_assets.defs.publish.assets import warehouse
    from kam_assets.defs.publish.checks import mart_quality_checks

    return dg.Definitions(assets=[warehouse], asset_checks=[mart_quality_checks()])
