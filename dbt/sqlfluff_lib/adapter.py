"""``adapter.dispatch(name, 'kam')`` for sqlfluff: the project macro ``duckdb__<name>`` (else
``default__<name>``) of dbt/macros/<name>.sql, rendered with plain Jinja, as dbt-duckdb
would pick it. The dispatch macros are self-contained (their arguments only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jinja2

MACROS = Path(__file__).resolve().parents[1] / "macros"


def dispatch(name: str, macro_namespace: str | None = None) -> Callable[..., str]:
    source = (MACROS / f"{name}.sql").read_text()
    module = jinja2.Environment().from_string(source).module
    macro = getattr(module, f"duckdb__{name}", None) or getattr(module, f"default__{name}")
    return lambda *args, **kwargs: str(macro(*args, **kwargs))
