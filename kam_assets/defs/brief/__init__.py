"""The daily brief per manager, written after every publish from the published warehouse."""

from __future__ import annotations

import dagster as dg


def build_defs() -> dg.Definitions:
    from kam_assets.defs.brief.assets import manager_brief

    return dg.Definitions(assets=[manager_brief])
