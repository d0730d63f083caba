"""Masking credentials: the one place that decides what of a URL or a message is secret.

* :func:`mask_url` - a source or warehouse URL (or a folder path) as it may be shown:
  the password becomes ``***`` whatever it contains (spaces, ``@``, ``:``, ``%``,
  ``/``, ``?``, percent-encoding), and so does the value of every query parameter whose
  name contains ``pass``, ``pwd``, ``secret``, ``token`` or ``key`` (``?sslpassword=``,
  ``?api_key=``, ...). User, host, port, database and the other parameters stay readable
  and written as they were.
* :func:`url_secrets` - the secret values of a URL, as written and decoded, and the
  pieces of a password a URL parser would cut out of it (at ``@ : / ? #``: a driver that
  stops the userinfo at the first ``@`` reports ``invalid port 'Wk%40Tm@host'``), down to
  :data:`MIN_FRAGMENT` characters.
* :func:`mask_text` - a message (e.g. a driver's error) with every embedded URL masked,
  every ``name=value`` pair with a secret-like name masked, and every given secret
  (typically ``url_secrets(url)`` of the URL the message is about) replaced.

URLs are read with SQLAlchemy's parser (:func:`sqlalchemy.engine.make_url`) where it is
right, with two corrections it needs: the userinfo ends at the LAST ``@`` before the
query (SQLAlchemy stops at the first, so ``u:p@ss@host`` would leak ``ss``), and the
masked URL is rebuilt from the text as written (SQLAlchemy's rendering re-encodes paths
and query values). Text that is not a URL (a folder path, a DSN ``password=...``) falls
back to the ``name=value`` rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from sqlalchemy.engine import make_url

MASK = "***"
NOT_CONFIGURED = "<not configured>"
#: a query (or ``name=value``) parameter is secret when its name contains one of these
SECRET_NAME_PARTS = ("pass", "pwd", "secret", "token", "key")

#: pieces of a password shorter than this are not searched for in messages (too common)
MIN_FRAGMENT = 4
_URL_DELIMITERS = re.compile(r"([@:/?#])")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# a URL inside a message: the userinfo may hold spaces, so it runs to the last '@' of the
# line when the text after the scheme looks like "user:..."; the rest stops at whitespace
_EMBEDDED_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://(?:[^\s/@:'\"<>]*:[^\n]*@)?[^\s'\"<>]*")
_SECRET_PAIR = re.compile(
    r"(?P<name>[A-Za-z0-9_.%\-]*(?:pass|pwd|secret|token|key)[A-Za-z0-9_.%\-]*)"
    r"(?P<eq>\s*=\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^&;\s,)]+)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """Whether a parameter named ``name`` (percent-encoded or not) holds a secret."""
    lowered = unquote_plus(name).lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


def _split(text: str) -> tuple[str, str, str] | None:
    """``(scheme://, userinfo, rest)`` of a URL, or None when ``text`` is not a URL."""
    match = _SCHEME.match(text)
    if not match:
        return None
    head, tail = text[: match.end()], text[match.end() :]
    if tail.startswith("/"):  # no authority (sqlite:///path): no userinfo
        return head, "", tail
    query = tail.find("?")
    at = tail.rfind("@", 0, query if query >= 0 else len(tail))
    if at < 0 and "@" in tail:
        # '?' before every '@': inside the password when SQLAlchemy reads one there
        try:
            has_password = make_url(text).password is not None
        except Exception:  # not a SQLAlchemy URL (e.g. https://): no password here
            has_password = False
        if has_password:
            at = tail.find("@")
    if at < 0:
        return head, "", tail
    return head, tail[: at + 1], tail[at + 1 :]


def _mask_userinfo(userinfo: str) -> str:
    user, colon, _ = userinfo[:-1].partition(":")
    return f"{user}:{MASK}@" if colon else userinfo


def _mask_query(rest: str) -> str:
    base, question, query = rest.partition("?")
    if not question:
        return rest
    fragment = ""
    if "#" in query:
        query, _, fragment = query.partition("#")
        fragment = "#" + fragment
    parts = re.split(r"([&;])", query)
    for i in range(0, len(parts), 2):
        name, equals, _ = parts[i].partition("=")
        if equals and is_secret_name(name):
            parts[i] = f"{name}={MASK}"
    return base + "?" + "".join(parts) + fragment


def _mask_pairs(text: str) -> str:
    return _SECRET_PAIR.sub(lambda m: f"{m['name']}{m['eq']}{MASK}", text)


def _fragments(value: str) -> set[str]:
    """Every run of consecutive pieces of ``value`` cut at URL delimiters (not ``value``
    itself), of at least :data:`MIN_FRAGMENT` characters."""
    parts = _URL_DELIMITERS.split(value)  # pieces at even positions, delimiters between
    count = len(parts) // 2 + 1
    out = set()
    for i in range(count):
        for j in range(i + 1, count + 1):
            if (i, j) != (0, count):
                fragment = "".join(parts[2 * i : 2 * j - 1])
                if len(fragment) >= MIN_FRAGMENT:
                    out.add(fragment)
    return out


def mask_url(url: str | None) -> str:
    """The URL with its password and secret query parameters replaced by ``***``.

    ``None`` gives ``<not configured>``; text that is not a URL (a folder path) is only
    cleared of ``name=value`` secrets.
    """
    if url is None:
        return NOT_CONFIGURED
    text = str(url)
    parts = _split(text)
    if parts is None:
        return _mask_pairs(text)
    head, userinfo, rest = parts
    return head + _mask_userinfo(userinfo) + _mask_query(rest)


def url_secrets(url: str | None) -> list[str]:
    """The secret values of ``url`` (password, secret query values), as written, decoded
    and re-encoded, longest first: what :func:`mask_text` must remove from a message."""
    if not url:
        return []
    text = str(url)
    found: set[str] = set()
    parts = _split(text)
    if parts is not None:
        _, userinfo, rest = parts
        _, colon, password = userinfo[:-1].partition(":")
        if colon and password:
            found.add(password)
        _, _, query = rest.partition("?")
        for item in re.split(r"[&;]", query.partition("#")[0]):
            name, equals, value = item.partition("=")
            if equals and value and is_secret_name(name):
                found.add(value)
    else:
        for match in _SECRET_PAIR.finditer(text):
            found.add(match["value"].strip("'\""))
    variants: set[str] = set()
    for value in found:
        variants |= {value, unquote(value), unquote_plus(value), quote(unquote(value), safe="")}
        variants.add(quote_plus(unquote_plus(value)))
    for variant in list(variants):
        variants |= _fragments(variant)
    return sorted((v for v in variants if v), key=len, reverse=True)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secrets, embedded URLs and ``name=value`` secrets masked."""
    message = str(text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        message = message.replace(secret, MASK)
    message = _EMBEDDED_URL.sub(lambda m: mask_url(m.group(0)), message)
    return _mask_pairs(message)
