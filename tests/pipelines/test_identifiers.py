from __future__ import annotations

import pytest

from pipelines.identifiers import (
    quote_identifier,
    validate_identifier,
    validate_role_name,
    validate_schema_name,
)


@pytest.mark.parametrize("name", ["marts", "audit", "kam_bi", "_x", "a1_b2", "a" * 63])
def test_valid_identifiers_are_returned_unchanged(name: str) -> None:
    assert validate_identifier(name, "KAM_SETTING") == name


@pytest.mark.parametrize(
    "name",
    [
        "marts; drop table x",
        'Robert"); --',
        "Marts",  # upper case would fold or need quoting
        "1marts",
        "",
        "a" * 64,  # longer than PostgreSQL's 63-character limit
        "mar-ts",
        "marts\n",
        "märts",
        None,
        42,
    ],
)
def test_invalid_identifiers_raise_value_error_naming_the_setting(name: object) -> None:
    with pytest.raises(ValueError, match="KAM_SETTING"):
        validate_identifier(name, "KAM_SETTING")


@pytest.mark.parametrize("name", ["pg_catalog", "pg_temp_1", "information_schema"])
def test_reserved_schema_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="schemas"):
        validate_schema_name(name, "schemas")


@pytest.mark.parametrize("name", ["public", "none", "current_user", "session_user", "pg_monitor"])
def test_reserved_role_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="bi_role"):
        validate_role_name(name, "bi_role")


def test_schema_and_role_validators_accept_ordinary_names() -> None:
    assert validate_schema_name("marts", "schemas") == "marts"
    assert validate_role_name("kam_bi", "bi_role") == "kam_bi"


def test_quote_identifier_doubles_embedded_quotes() -> None:
    assert quote_identifier("marts") == '"marts"'
    assert quote_identifier('Robert"); --') == '"Robert""); --"'
    with pytest.raises(ValueError):
        quote_identifier("a\x00b")
