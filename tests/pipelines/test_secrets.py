"""Masking credentials: many URL forms, none of them leaks its secret (no Dagster)."""

from __future__ import annotations

import itertools
from urllib.parse import quote

import pytest

from pipelines.secrets import MASK, NOT_CONFIGURED, mask_text, mask_url, url_secrets

DRIVERS = [
    "postgresql",
    "postgresql+psycopg2",
    "postgres",
    "mysql+pymysql",
    "mariadb+mariadbconnector",
    "mssql+pyodbc",
]
# passwords as a user types them; each is tried raw and percent-encoded in the URL
PASSWORDS = [
    "s3cretPW",
    "sec ret99",
    "p@ssw0rd!",
    "a:b:c:dPW",
    "100%sure",
    "we@ird:mix %PW",
    "sla/sh?q#frag",
    "t@il@@",
]
HOSTS = [("db.example.com", ":5432"), ("10.1.2.3", ""), ("[::1]", ":5433"), ("localhost", "")]
SECRET_PARAMS = ["password", "sslpassword", "api_key", "apikey", "token", "client_secret", "PWD"]


def _cases():
    for driver, password, (host, port), encoded in itertools.product(
        DRIVERS, PASSWORDS, HOSTS, (False, True)
    ):
        written = quote(password, safe="") if encoded else password
        if not encoded and any(c in password for c in "/?#"):
            continue  # unencoded, these characters make the URL ambiguous (covered below)
        yield f"{driver}://kamuser:{written}@{host}{port}/kamdb", password, host


@pytest.mark.parametrize(("url", "password", "host"), list(_cases()))
def test_password_never_shown_host_and_db_readable(url: str, password: str, host: str) -> None:
    masked = mask_url(url)
    for form in {password, quote(password, safe="")}:
        assert form not in masked, masked
    assert f"kamuser:{MASK}@{host}" in masked
    assert masked.endswith("/kamdb")
    # the same URL inside a driver's message, with and without the known secrets
    message = f"connection to {url} failed: FATAL password for kamuser rejected"
    for text in (mask_text(message, url_secrets(url)), mask_text(message)):
        assert password not in text and quote(password, safe="") not in text, text
        assert f"{host}" in text and "failed: FATAL" in text


@pytest.mark.parametrize(
    ("name", "value"), list(itertools.product(SECRET_PARAMS, ["topsecret77", "to%2Fp+secret77"]))
)
def test_secret_query_parameters_are_masked(name: str, value: str) -> None:
    url = f"postgresql+psycopg2://kam@db.example/kamdb?sslmode=require&{name}={value}&x=1"
    masked = mask_url(url)
    assert "secret77" not in masked
    assert f"{name}={MASK}" in masked
    assert masked.startswith("postgresql+psycopg2://kam@db.example/kamdb?sslmode=require&")
    assert masked.endswith("&x=1")
    assert "secret77" not in mask_text(f"bad option in {url}: rejected")


def test_known_defects_are_fixed() -> None:
    assert mask_url("postgresql://kamuser:sec ret99@host/db") == "postgresql://kamuser:***@host/db"
    assert (
        mask_url("postgresql://kam@host/db?sslpassword=topsecret77")
        == "postgresql://kam@host/db?sslpassword=***"
    )


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pa/ss@host/db", "postgresql://u:***@host/db"),
        ("postgresql://u:pa?ss@host/db", "postgresql://u:***@host/db"),
        ("postgresql://u:p#ss@host/db", "postgresql://u:***@host/db"),
        ("postgresql://u:p@ss@host/db?email=a@b.c", "postgresql://u:***@host/db?email=a@b.c"),
        ("postgresql://u:@host/db", "postgresql://u:***@host/db"),
        ("postgresql://kam@host/db", "postgresql://kam@host/db"),
        ("postgresql://host/db?sslmode=require", "postgresql://host/db?sslmode=require"),
        ("sqlite:///data/erp.sqlite", "sqlite:///data/erp.sqlite"),
        ("sqlite:////abs/path/a@b:c.sqlite", "sqlite:////abs/path/a@b:c.sqlite"),
        ("sqlite://", "sqlite://"),
        ("/data/erp_files", "/data/erp_files"),
        ("file:///data/erp_files", "file:///data/erp_files"),
    ],
)
def test_edge_forms(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_not_configured_and_plain_text() -> None:
    assert mask_url(None) == NOT_CONFIGURED
    assert mask_url("host=db password=hunter2 dbname=kam") == "host=db password=*** dbname=kam"
    assert url_secrets(None) == [] and url_secrets("") == []


def test_mask_text_replaces_given_secrets_anywhere() -> None:
    url = "postgresql://kam:p%40ss word@db/kam"
    secrets = url_secrets(url)
    assert "p@ss word" in secrets and "p%40ss word" in secrets
    text = mask_text("auth failed for 'p@ss word' at db; dsn password='p@ss word'", secrets)
    assert "p@ss" not in text and "word'" not in text
    assert "at db" in text


def test_pieces_of_a_password_cut_by_a_parser_are_masked() -> None:
    """SQLAlchemy stops the userinfo at the first '@': its error names the rest."""
    url = "postgresql://kamuser:Zq@Xv:Wk%40Tm@127.0.0.1:1/db?api_key=Kq7Yh3"
    message = "ValueError: invalid literal for int() with base 10: 'Wk%40Tm@127.0.0.1:1'"
    masked = mask_text(message, url_secrets(url))
    assert "Wk%40Tm" not in masked and "127.0.0.1:1" in masked
    for piece in ("Xv:Wk", "Wk@Tm", "Xv:Wk%40Tm", "Zq@Xv"):
        assert piece in url_secrets(url)
    assert "Zq" not in url_secrets(url)  # shorter than MIN_FRAGMENT: not searched for
