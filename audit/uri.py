"""Validation helpers for target URIs, shared by every check family.

Target strings come from users and from inventories; they are validated here once,
at the border, so that nothing downstream (an nmap command line, a socket call) ever
sees a string that is not a plain host name, an address or a network.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, parse_qsl, urlsplit

from audit.errors import TargetError

if TYPE_CHECKING:
    from audit.models import Target
    from audit.registry import Families

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


# --- name resolution -----------------------------------------------------------------


def resolve_all(names: Sequence[str], timeout: float) -> dict[str, tuple[str, ...]]:
    """Resolve names concurrently; a name that fails or times out maps to ().

    Each lookup runs in a daemon thread of its own: ``getaddrinfo`` cannot be
    cancelled, and a resolver that never answers must cost ``timeout`` once, not hold
    the process at exit (a pool's workers are joined then) for the system's own
    resolver timeout per name.
    """
    futures = {name: resolve_in_background(name) for name in names}
    deadline = time.monotonic() + timeout
    result: dict[str, tuple[str, ...]] = {}
    for name, future in futures.items():
        try:
            result[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except (FutureTimeout, OSError, UnicodeError):
            result[name] = ()
    return result


def resolve_in_background(name: str) -> Future[tuple[str, ...]]:
    """Resolve ``name`` in a daemon thread (see :func:`resolve_all` for why)."""
    future: Future[tuple[str, ...]] = Future()

    def run() -> None:
        try:
            future.set_result(_resolve(name))
        except Exception as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="resolve", daemon=True).start()
    return future


def _resolve(name: str) -> tuple[str, ...]:
    infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%")[0]
        if address not in seen:
            seen.append(address)
    return tuple(seen)


def parse_target(
    raw: str, families: Families, system: str = "adhoc", from_command_line: bool = False
) -> Target:
    """Validate one target URI through the family that owns its scheme.

    Here rather than in :mod:`audit.inventory`, so that a scan of targets named on the
    command line does not import the inventory's pydantic models before its first probe.
    """
    text = raw.strip()
    if not text or any(ord(ch) < 32 or ch.isspace() for ch in text):
        raise TargetError(
            f"{raw!r}: a target URI cannot be empty or contain spaces or control characters"
        )
    if "://" not in text:
        raise TargetError(f"{raw!r}: not a URI; write scheme://host, e.g. tls://{text}")
    try:
        split = urlsplit(text)
    except ValueError as exc:
        raise TargetError(f"{raw!r}: {exc}") from None
    scheme = split.scheme.lower()
    family = families.by_scheme.get(scheme)
    if family is None:
        known = ", ".join(sorted(families.by_scheme)) or "none loaded"
        raise TargetError(f"{raw!r}: unknown scheme {scheme!r} (known: {known})")
    target = family.parse(split, text)
    return replace(target, system=system, from_command_line=from_command_line)
