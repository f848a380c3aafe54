"""Parse ``https://HOST[:PORT][/PATH][?QUERY]`` targets into canonical URLs.

The path and query belong to the site (a portal's home may be ``/fr/?lang=fr``), so the
family takes no settings in the query string: they live in the inventory's ``web:``
block (:func:`validate_options`). The canonical URL (lower-case host, default port left
out, empty path as ``/``) is the resource key, as a browser would write it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, quote

from audit.errors import TargetError
from audit.models import Target
from audit.uri import format_host, normalise_host, split_port

DEFAULT_PORT = 443
DEFAULT_HTTP_PORT = 80
MAX_URL = 2048
"""Longer site URLs are refused: a target is typed or listed by a person."""
_SAFE = "/:@!$&'()*+,;=-._~%?"


def parse(split: SplitResult, raw: str) -> Target:
    """Validate an ``https://`` target into a :class:`Target` keyed by its canonical URL."""
    if split.scheme.lower() != "https":
        raise TargetError(f"{raw!r}: scheme {split.scheme!r} is not served by the web family")
    if len(raw) > MAX_URL:
        raise TargetError(f"{raw!r}: longer than {MAX_URL} characters")
    if split.username is not None or split.password is not None:
        raise TargetError(f"{raw!r}: credentials do not belong in a target URI")
    if split.fragment:
        raise TargetError(f"{raw!r}: unexpected fragment")
    host = normalise_host(split.hostname or "", raw)
    port = split_port(split, raw) or DEFAULT_PORT
    path = _path(split, raw)
    return Target(
        uri=site_url(host, port, path),
        scheme="https",
        host=host,
        port=port,
        params=(("path", path),),
    )


def _path(split: SplitResult, raw: str) -> str:
    """Path and query, percent-encoded where a browser would encode them."""
    text = (split.path or "/") + (f"?{split.query}" if split.query else "")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise TargetError(f"{raw!r}: control characters or spaces in the path")
    if not text.startswith("/"):
        raise TargetError(f"{raw!r}: the path must start with '/'")
    return quote(text, safe=_SAFE)


def site_url(host: str, port: int, path: str = "/") -> str:
    """``https://host[:port]/path``, the port left out when it is 443."""
    shown = format_host(host) if port == DEFAULT_PORT else f"{format_host(host)}:{port}"
    return f"https://{shown}{path}"


def path_of(target: Target) -> str:
    """The target's path and query (``/`` when none was given)."""
    return target.param("path") or "/"


def validate_options(block: Any) -> None:
    """The inventory's ``web:`` block: ``{http_port: N}`` (0 skips the plain-HTTP look-up)."""
    if not isinstance(block, Mapping):
        raise ValueError("expected a mapping like {http_port: 80}")
    unknown = sorted(set(block) - {"http_port"})
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r} (known: http_port)")
    port = block.get("http_port", DEFAULT_HTTP_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError("http_port must be a port number (0 skips the plain-HTTP look-up)")


def http_port(options: Mapping[str, Any]) -> int:
    """Where plain HTTP is looked up for the redirect to HTTPS (0: not looked up)."""
    port = options.get("http_port", DEFAULT_HTTP_PORT)
    return port if isinstance(port, int) else DEFAULT_HTTP_PORT
