"""Parse ``tls://host[:port]`` targets and the STARTTLS ones: ``smtp://`` (25),
``imap://`` (143) and ``pop3://`` (110).

Accepted query parameters: ``sni`` (the server name to send, when it differs from
the host, e.g. a target given by address) and ``http_port`` (where to look for the
plain-HTTP redirect, default 80; ``0`` disables that look-up).
"""

from __future__ import annotations

from urllib.parse import SplitResult

from audit.errors import TargetError
from audit.models import Target
from audit.uri import (
    format_host,
    is_hostname,
    normalise_host,
    query_params,
    refuse_extras,
    split_port,
)

DEFAULT_PORTS = {"tls": 443, "smtp": 25, "imap": 143, "pop3": 110}
_PARAMS = frozenset({"sni", "http_port"})


def parse(split: SplitResult, raw: str) -> Target:
    """Validate a TLS or SMTP target URI into a :class:`Target`."""
    scheme = split.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise TargetError(f"{raw!r}: scheme {scheme!r} is not served by the tls family")
    refuse_extras(split, raw)
    host = normalise_host(split.hostname or "", raw)
    port = split_port(split, raw) or DEFAULT_PORTS[scheme]
    params = query_params(split, raw, _PARAMS)
    _check_params(dict(params), raw)
    uri = f"{scheme}://{format_host(host)}:{port}"
    return Target(uri=uri, scheme=scheme, host=host, port=port, params=params)


def _check_params(params: dict[str, str], raw: str) -> None:
    sni = params.get("sni")
    if sni is not None and not is_hostname(sni):
        raise TargetError(f"{raw!r}: sni {sni!r} is not a host name")
    http_port = params.get("http_port")
    if http_port is not None and not (http_port.isdigit() and 0 <= int(http_port) <= 65535):
        raise TargetError(f"{raw!r}: http_port must be a port number (0 disables)")


def server_name(target: Target) -> str | None:
    """The SNI to send: the ``sni`` parameter, else the host when it is a name."""
    explicit = target.param("sni")
    if explicit:
        return explicit.lower()
    return None if _is_address(target.host) else target.host


def _is_address(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()
