"""Parse ``dns://DOMAIN`` targets: a domain name, nothing else.

A zone is named, not reached: no port, no path, no query parameter, no address (an
address has no zone of its own; its reverse zone would be ``in-addr.arpa`` names).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult

from audit.errors import TargetError
from audit.models import Target
from audit.uri import normalise_host, refuse_extras


def parse(split: SplitResult, raw: str) -> Target:
    """Validate a ``dns://`` URI into a :class:`Target` keyed ``dns://domain``."""
    scheme = split.scheme.lower()
    if scheme != "dns":
        raise TargetError(f"{raw!r}: scheme {scheme!r} is not served by the dns family")
    refuse_extras(split, raw)
    if split.query:
        raise TargetError(f"{raw!r}: dns:// targets take no query parameters")
    if split.port is not None or (split.netloc or "").endswith(":"):
        raise TargetError(f"{raw!r}: a domain has no port")
    host = normalise_host(split.hostname or "", raw)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise TargetError(f"{raw!r}: give a domain name, not an address")
    return Target(uri=f"dns://{host}", scheme="dns", host=host)
