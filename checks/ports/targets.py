"""Parse and canonicalise ``ports://`` target URIs.

``ports://HOST[?ports=SPEC&sv=0|1&scan=connect|syn]`` where ``HOST`` is a host name, an
IPv4 address, a bracketed IPv6 address, or a network written ``ADDRESS/PREFIX``
(``ports://10.0.0.0/24``, ``ports://[fd00::]/120``). Everything here is validated once,
at the border: what reaches the nmap command line afterwards is a plain address, name or
network and a port list made only of digits, commas and dashes, so nothing a user typed
is ever handed to nmap verbatim.

The canonical URI keeps only what differs from the defaults, in a fixed order, with the
port list sorted and merged (``ports=80,22,21-23`` becomes ``ports=21-23,80``): two ways of
writing the same scan give the same target, hence the same resource keys and history.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult

from audit.errors import TargetError
from audit.models import Target
from audit.uri import format_host, normalise_host, query_params

SCHEME = "ports"
PARAMS = frozenset({"ports", "sv", "scan"})
SCAN_TYPES = ("connect", "syn")
DEFAULT_SCAN = "connect"
DEFAULT_SV = "1"
TOP_PORTS = 1000
MIN_PREFIX = {4: 16, 6: 112}
"""Widest network accepted per IP version: a /16 (65,536 addresses) or an IPv6 /112."""
MAX_SPEC_LENGTH = 2000

_PORT_ITEM = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?$")
_PREFIX_PATH = re.compile(r"^/([0-9]{1,3})/?$")


@dataclass(frozen=True)
class HostSpec:
    """The host part of a target: a name, an address or a network (never both)."""

    text: str
    """Canonical form: lower-case name, compressed address, or ``network/prefix``."""
    is_network: bool = False
    is_name: bool = False
    version: int = 4


def parse(split: SplitResult, raw: str) -> Target:
    """Validate a ``ports://`` URI into a canonical :class:`Target` (or raise TargetError)."""
    _refuse_extras(split, raw)
    host = parse_host(split, raw)
    params = _canonical_params(query_params(split, raw, PARAMS), raw)
    return Target(uri=canonical_uri(host, params), scheme=SCHEME, host=host.text, params=params)


def canonical_uri(host: HostSpec, params: tuple[tuple[str, str], ...]) -> str:
    """``ports://HOST[/PREFIX][?k=v&...]`` with IPv6 bracketed."""
    if host.is_network:
        address, prefix = host.text.split("/")
        location = f"{format_host(address)}/{prefix}"
    else:
        location = format_host(host.text)
    query = "&".join(f"{key}={value}" for key, value in params)
    return f"{SCHEME}://{location}" + (f"?{query}" if query else "")


def _refuse_extras(split: SplitResult, raw: str) -> None:
    """No credentials, fragment or port in the authority: refuse rather than ignore."""
    if split.username is not None or split.password is not None:
        raise TargetError(f"{raw!r}: credentials do not belong in a target URI")
    if split.fragment:
        raise TargetError(f"{raw!r}: unexpected fragment")
    try:
        port = split.port
    except ValueError:
        port = -1
    if port is not None:
        raise TargetError(
            f"{raw!r}: ports:// takes its ports as ?ports=SPEC "
            "(e.g. ports://host?ports=22,443), not host:port"
        )


def parse_host(split: SplitResult, raw: str) -> HostSpec:
    """The host, address or network of the URI; ``/PREFIX`` arrives as the URI path."""
    name = split.hostname or ""
    if name.startswith("-"):
        raise TargetError(f"{raw!r}: a host cannot start with '-'")
    if "%" in name:
        raise TargetError(f"{raw!r}: IPv6 zone identifiers are not supported")
    host = normalise_host(name, raw)
    version = _ip_version(host)
    match = _PREFIX_PATH.match(split.path)
    if split.path in ("", "/"):
        return HostSpec(host, is_name=version == 0, version=version or 4)
    if match is None:
        raise TargetError(
            f"{raw!r}: unexpected path {split.path!r} "
            "(a network is written ADDRESS/PREFIX, e.g. ports://10.0.0.0/24)"
        )
    if version == 0:
        raise TargetError(f"{raw!r}: a network prefix needs an address, not the name {host!r}")
    return _network(host, int(match.group(1)), version, raw)


def _ip_version(host: str) -> int:
    """4 or 6 for an address, 0 for a name."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return 0


def _network(address: str, prefix: int, version: int, raw: str) -> HostSpec:
    """A CIDR, normalised to its network address; a /32 or /128 is a single host."""
    width = 32 if version == 4 else 128
    if prefix > width:
        raise TargetError(f"{raw!r}: prefix /{prefix} is longer than /{width}")
    if prefix < MIN_PREFIX[version]:
        raise TargetError(
            f"{raw!r}: /{prefix} is too large a network to scan; "
            f"split it into /{MIN_PREFIX[version]} or narrower networks"
        )
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    if prefix == width:
        return HostSpec(str(network.network_address), version=version)
    return HostSpec(str(network), is_network=True, version=version)


def _canonical_params(pairs: tuple[tuple[str, str], ...], raw: str) -> tuple[tuple[str, str], ...]:
    """Validated parameters, defaults dropped, in the order ports, sv, scan."""
    given = dict(pairs)
    result: list[tuple[str, str]] = []
    if "ports" in given:
        result.append(("ports", parse_port_spec(given["ports"], raw)))
    sv = given.get("sv", DEFAULT_SV)
    if sv not in ("0", "1"):
        raise TargetError(f"{raw!r}: sv must be 0 or 1, not {sv!r}")
    if sv != DEFAULT_SV:
        result.append(("sv", sv))
    scan = given.get("scan", DEFAULT_SCAN)
    if scan not in SCAN_TYPES:
        raise TargetError(f"{raw!r}: scan must be 'connect' or 'syn', not {scan!r}")
    if scan != DEFAULT_SCAN:
        result.append(("scan", scan))
    return tuple(result)


def parse_port_spec(text: str, raw: str) -> str:
    """Validate a TCP port list in nmap's syntax and return it sorted and merged.

    Accepted: comma-separated ports and ``LOW-HIGH`` ranges, each in 1–65535, optionally
    prefixed by ``T:`` (TCP, nmap's own prefix; dropped in the canonical form). Nothing
    else — no open ranges, names, ``U:``/``S:`` protocols or spaces — so the value can
    never carry anything but numbers to nmap.
    """
    body = text[2:] if text.startswith("T:") else text
    if not body:
        raise TargetError(f"{raw!r}: ports= is empty")
    if len(body) > MAX_SPEC_LENGTH:
        raise TargetError(f"{raw!r}: ports= is longer than {MAX_SPEC_LENGTH} characters")
    if re.match(r"^[A-Za-z]:", body):
        raise TargetError(f"{raw!r}: only TCP ports are scanned (T: prefix or none)")
    ranges = [_port_range(item, raw) for item in body.split(",")]
    return format_port_ranges(merge_ranges(ranges))


def _port_range(item: str, raw: str) -> tuple[int, int]:
    match = _PORT_ITEM.match(item)
    if match is None:
        raise TargetError(f"{raw!r}: {item!r} is not a port or a LOW-HIGH range of ports")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise TargetError(f"{raw!r}: port {port} is out of range 1-65535")
    if low > high:
        raise TargetError(f"{raw!r}: range {item!r} runs backwards")
    return low, high


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping or adjacent ranges."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def format_port_ranges(ranges: list[tuple[int, int]]) -> str:
    """``[(21, 23), (80, 80)]`` → ``"21-23,80"``."""
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def host_spec(target: Target) -> HostSpec:
    """Rebuild the :class:`HostSpec` of a parsed target (its host is already canonical)."""
    if "/" in target.host:
        network = ipaddress.ip_network(target.host)
        return HostSpec(target.host, is_network=True, version=network.version)
    version = _ip_version(target.host)
    return HostSpec(target.host, is_name=version == 0, version=version or 4)
