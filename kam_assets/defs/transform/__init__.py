"""dbt models (staging, intermediate, marts) built by `dbt build`; dbt tests are asset checks."""

from __future__ import annotations

import dagster as dg


def build_defs() -> dg.Definitions:
    from kam_assets.defs.transform.assets import kam_dbt_assets

    return dg.Definitions(assets=[kam_dbt_assets])
