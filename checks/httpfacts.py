"""HTTP facts that more than one family reads off a response: HSTS and the HTTPS redirect.

The ``tls`` family reads HSTS from the one HTTP answer its handshake gets; the ``web``
family from the page it fetches. Both must mean the same thing by ``hsts`` and by a
redirect "to HTTPS on the same host", so the parsing lives here, once.
"""

from __future__ import annotations

from urllib.parse import urlsplit

HSTS_ABSENT: dict[str, object] = {
    "present": False,
    "max_age": None,
    "include_subdomains": False,
    "preload": False,
}
"""The ``hsts`` fact of an HTTP answer without Strict-Transport-Security."""


def parse_hsts(value: str) -> dict[str, object]:
    """RFC 6797 directives: max-age (seconds), includeSubDomains, preload."""
    max_age: int | None = None
    flags: set[str] = set()
    for directive in value.split(";"):
        name, _, arg = directive.strip().partition("=")
        name = name.strip().lower()
        if name == "max-age":
            digits = arg.strip().strip('"')
            max_age = int(digits) if digits.isdigit() else None
        elif name:
            flags.add(name)
    return {
        "present": True,
        "max_age": max_age,
        "include_subdomains": "includesubdomains" in flags,
        "preload": "preload" in flags,
    }


def hsts_of(value: str | None) -> dict[str, object]:
    """The ``hsts`` fact of an HTTP answer whose Strict-Transport-Security is ``value``."""
    return dict(HSTS_ABSENT) if value is None else parse_hsts(value)


def is_https_to(location: str, host: str) -> bool:
    """Whether ``location`` is an absolute https:// URL whose host is ``host``.

    Host names compare case-insensitively and without a trailing dot; userinfo
    (``https://host@evil.example/``) and scheme-relative forms are read as a browser
    reads them, through ``urlsplit``, so they cannot pass for the requested host.
    """
    try:
        split = urlsplit(location.strip())
        named = split.hostname
    except ValueError:
        return False
    if split.scheme.lower() != "https" or not named:
        return False
    return host_key(named) == host_key(host)


def host_key(name: str) -> str:
    """A host name as compared: lower case, no trailing dot, no IPv6 brackets."""
    return name.lower().rstrip(".").strip("[]")
