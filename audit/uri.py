"""Validation helpers for target URIs, shared by every check family.

Target strings come from users and from inventories; they are validated here once,
at the border, so that nothing downstream (an nmap command line, a socket call) ever
sees a string that is not a plain host name, an address or a network.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, parse_qsl

from audit.errors import TargetError

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


_NUMERIC_LABEL = re.compile(r"^[0-9-]+$")


def is_hostname(name: str) -> bool:
    """True for an RFC 1123 host name (underscores tolerated, as real DNS has them).

    The last label may not be only digits and dashes (RFC 3696 §2): ``127.1`` or
    ``10.0.0-255.1`` are addresses and ranges to the resolver and to nmap, never names,
    and a name is not checked against the scope's networks as an address is.
    """
    if not name or len(name) > 253 or name.startswith("-"):
        return False
    labels = name.rstrip(".").split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        return False
    return all(_LABEL.match(label) for label in labels)


def normalise_host(host: str, raw: str) -> str:
    """Return the host lower-cased (names) or compressed (addresses), or raise."""
    if not host:
        raise TargetError(f"{raw!r}: missing host")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not is_hostname(host):
        raise TargetError(f"{raw!r}: {host!r} is not a valid host name or address")
    return host.lower().rstrip(".")


def split_port(split: SplitResult, raw: str) -> int | None:
    """The URI's port, validated to 1–65535 (None when absent)."""
    try:
        port = split.port
    except ValueError:
        raise TargetError(f"{raw!r}: port is not a number in 1-65535") from None
    if port is not None and not 1 <= port <= 65535:
        raise TargetError(f"{raw!r}: port {port} is out of range 1-65535")
    if port == 0:
        raise TargetError(f"{raw!r}: port 0 is not a valid port")
    return port


def query_params(
    split: SplitResult, raw: str, allowed: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """Parse the query string, refusing unknown or repeated parameters."""
    try:
        pairs = parse_qsl(split.query, keep_blank_values=True, strict_parsing=bool(split.query))
    except ValueError:
        raise TargetError(f"{raw!r}: malformed query string") from None
    seen: set[str] = set()
    for key, _ in pairs:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise TargetError(f"{raw!r}: unknown parameter {key!r} (known: {known})")
        if key in seen:
            raise TargetError(f"{raw!r}: parameter {key!r} given twice")
        seen.add(key)
    return tuple(pairs)


def format_host(host: str) -> str:
    """Bracket IPv6 addresses so ``host:port`` stays unambiguous."""
    return f"[{host}]" if ":" in host else host


def refuse_extras(split: SplitResult, raw: str) -> None:
    """Targets carry no user info, path or fragment: refuse them rather than ignore them."""
    if split.username is not None or split.password is not None:
        raise TargetError(f"{raw!r}: credentials do not belong in a target URI")
    if split.path not in ("", "/"):
        raise TargetError(f"{raw!r}: unexpected path {split.path!r}")
    if split.fragment:
        raise TargetError(f"{raw!r}: unexpected fragment")
