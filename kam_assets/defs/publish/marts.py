"""Which marts exist (from the dbt manifest) and which GX checks apply to them."""

from __future__ import annotations

import json
from functools import lru_cache

import dagster as dg

from kam_assets.dbt_project import dbt_project
from pipelines.quality.checks import FrameCheck, applicable_checks
from pipelines.quality.mart_checks import MART_CHECKS

MART_SCHEMA = "marts"


@lru_cache(maxsize=1)
def mart_models() -> dict[str, dict]:
    """Mart models of the manifest: relation ("marts.<name>") -> manifest node."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    out = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model" or node.get("schema") != MART_SCHEMA:
            continue
        out[f"{MART_SCHEMA}.{node.get('alias') or node['name']}"] = node
    return out


def mart_asset_key(relation: str) -> dg.AssetKey:
    """Asset key of a mart: the dbt translator's default, [schema, model name]."""
    node = mart_models()[relation]
    return dg.AssetKey([node["config"].get("schema") or MART_SCHEMA, node["name"]])


def mart_asset_keys() -> list[dg.AssetKey]:
    return [mart_asset_key(relation) for relation in sorted(mart_models())]


def mart_checks() -> list[tuple[FrameCheck, dg.AssetKey]]:
    """The declared mart checks whose mart and columns exist, with the mart's asset key."""
    available = {rel: list(node.get("columns") or {}) for rel, node in mart_models().items()}
    return [(c, mart_asset_key(c.relation)) for c in applicable_checks(MART_CHECKS, available)]
