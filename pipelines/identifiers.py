"""Validation and quoting of SQL identifiers that come from settings.

Schema and role names reach SQL text (DDL cannot take bind parameters), so every
name that comes from configuration is checked against a strict pattern *before*
any SQL runs, and quoted when it is used. The error names the setting, so a
typo in the environment is easy to find.
"""

from __future__ import annotations

import re

#: lower-case letters, digits and underscores, not starting with a digit, at most
#: 63 characters (PostgreSQL's NAMEDATALEN - 1): never needs quoting, never folds.
IDENTIFIER_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: role names PostgreSQL reserves or interprets specially
_RESERVED_ROLES = frozenset({"public", "none", "current_user", "current_role", "session_user"})
#: schema names PostgreSQL reserves or owns
_RESERVED_SCHEMAS = frozenset({"information_schema"})


def validate_identifier(value: object, setting: str) -> str:
    """Return ``value`` if it is a safe identifier, else raise ``ValueError`` naming ``setting``."""
    if not isinstance(value, str) or not IDENTIFIER_PATTERN.fullmatch(value):
        raise ValueError(
            f"{setting}: invalid identifier {value!r}; expected {IDENTIFIER_PATTERN.pattern} "
            "(lower-case letters, digits, underscores; at most 63 characters)"
        )
    return value


def validate_schema_name(value: object, setting: str) -> str:
    """A schema name: a safe identifier that PostgreSQL lets us create."""
    name = validate_identifier(value, setting)
    if name.startswith("pg_") or name in _RESERVED_SCHEMAS:
        raise ValueError(f"{setting}: schema name {name!r} is reserved by PostgreSQL")
    return name


def validate_role_name(value: object, setting: str) -> str:
    """A role name: a safe identifier that is not reserved by PostgreSQL."""
    name = validate_identifier(value, setting)
    if name.startswith("pg_") or name in _RESERVED_ROLES:
        raise ValueError(f"{setting}: role name {name!r} is reserved by PostgreSQL")
    return name


def quote_identifier(name: str) -> str:
    """Double-quote ``name`` for SQL (embedded double quotes doubled).

    Use for names that do not come from settings (for example table names read
    from a database catalog); settings must also pass the validators above.
    """
    if "\x00" in name:
        raise ValueError(f"identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'
