"""Set-Cookie, read per RFC 6265 §5.2, keeping names and attributes, never values.

A cookie's value may be a session token: it is dropped the moment the header is split,
so it reaches no fact, store or report. The standard library's ``http.cookies`` is made
for the server side (it refuses or mangles what browsers accept), hence the few lines
of §5.2 here. Prefixes follow RFC 6265bis §4.1.3: ``__Secure-`` needs Secure;
``__Host-`` needs Secure, no Domain and Path=/.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from typing import Any

MAX_COOKIES = 100
"""Cookies described per answer; more are counted, not described."""


def parse_set_cookie(header: str) -> dict[str, Any] | None:
    """Name and attributes of one Set-Cookie value (None when it sets no cookie)."""
    pair, *attributes = header.split(";")
    name, equals, _value = pair.partition("=")
    name = name.strip() if equals else ""
    if not equals:
        return None  # §5.2 step 2: no '=' in the name-value pair, the cookie is ignored
    seen: dict[str, str] = {}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        seen.setdefault(key.strip().lower(), value.strip())
    same_site = seen.get("samesite")
    cookie = {
        "name": name[:256],
        "secure": "secure" in seen,
        "http_only": "httponly" in seen,
        "same_site": same_site.capitalize() if same_site else None,
        "domain": seen.get("domain") or None,
        "path": seen.get("path") or None,
    }
    cookie["prefix_ok"] = _prefix_ok(cookie)
    return cookie


def _prefix_ok(cookie: dict[str, Any]) -> bool | None:
    """Whether a ``__Secure-``/``__Host-`` name keeps its promise (None: no prefix)."""
    name = str(cookie["name"])
    if name.startswith("__Host-"):
        return bool(cookie["secure"]) and cookie["domain"] is None and cookie["path"] == "/"
    if name.startswith("__Secure-"):
        return bool(cookie["secure"])
    return None


def cookie_facts(values: Sequence[str]) -> list[dict[str, Any]]:
    """The ``cookies`` fact: one entry per cookie set, in order, at most :data:`MAX_COOKIES`;
    a Set-Cookie that deletes a cookie (expired) sets none and is left out."""
    cookies = [parse_set_cookie(v) for v in values if not is_deletion(v)]
    return [c for c in cookies if c is not None][:MAX_COOKIES]


def is_deletion(header: str) -> bool:
    """The cookie expires at once (RFC 6265 §5.2.2: Max-Age ≤ 0, which wins over Expires;
    §5.2.1: an Expires in the past): browsers remove it rather than store it."""
    attributes: dict[str, str] = {}
    for attribute in header.split(";")[1:]:
        key, _, value = attribute.partition("=")
        attributes.setdefault(key.strip().lower(), value.strip())
    max_age = attributes.get("max-age", "")
    if max_age.lstrip("-").isdigit():
        return int(max_age) <= 0
    if "expires" in attributes:
        try:
            expires = parsedate_to_datetime(attributes["expires"])
        except (TypeError, ValueError, IndexError):
            return False
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        return expires < dt.datetime.now(dt.UTC)
    return False


def is_insecure(cookie: dict[str, Any]) -> bool:
    """Missing Secure, HttpOnly or SameSite, or a broken prefix: what ``cookies_insecure``
    counts."""
    return (
        not cookie["secure"]
        or not cookie["http_only"]
        or cookie["same_site"] is None
        or cookie["prefix_ok"] is False
    )
