"""Set-Cookie, read per RFC 6265 §5.2, keeping names and attributes, never values.

A cookie's value may be a session token: it is dropped the moment the header is split,
so it reaches no fact, store or report. The standard library's ``http.cookies`` is made
for the server side (it refuses or mangles what browsers accept), hence the few lines
of §5.2 here. Prefixes follow RFC 6265bis §4.1.3: ``__Secure-`` needs Secure;
``__Host-`` needs Secure, no Domain and Path=/.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """The ``cookies`` fact: one entry per cookie set, in order, at most :data:`MAX_COOKIES`."""
    cookies = [c for c in (parse_set_cookie(v) for v in values) if c is not None]
    return cookies[:MAX_COOKIES]


def is_insecure(cookie: dict[str, Any]) -> bool:
    """Missing Secure, HttpOnly or SameSite, or a broken prefix: what ``cookies_insecure``
    counts."""
    return (
        not cookie["secure"]
        or not cookie["http_only"]
        or cookie["same_site"] is None
        or cookie["prefix_ok"] is False
    )
