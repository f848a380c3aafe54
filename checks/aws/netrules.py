"""Normalise security-group and network-ACL rules into facts rules can read simply.

Every rule becomes one entry per source with a plain protocol name, a port range, the
kind of source, and precomputed answers: is it open to the whole Internet, does it cover
every port, which *watched* ports (administration and database ports) does it cover.

A port counts for TCP, UDP and "all" (protocol -1) alike: CIS 5.1-5.3 name all three, and
RDP listens on UDP 3389 as well as TCP.
"""

from __future__ import annotations

from typing import Any

from checks.netports import ADMIN_PORTS, DATA_PORTS, WATCHED_PORTS, WORLD

__all__ = [
    "ADMIN_PORTS",
    "DATA_PORTS",
    "WATCHED_PORTS",
    "WORLD",
    "entry",
    "nacl_entries",
    "nacl_world_open",
    "port_range",
    "protocol_name",
    "sg_entries",
    "world_open_ports",
]

_PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
_PORT_PROTOCOLS = ("all", "tcp", "udp")


def protocol_name(value: Any) -> str:
    """``-1``/``6``/``tcp`` → ``all``/``tcp``; unknown numbers stay as they are."""
    text = str(value).lower()
    return _PROTOCOLS.get(text, text)


def port_range(protocol: str, low: Any, high: Any) -> tuple[int | None, int | None]:
    """The TCP/UDP port range a rule covers (None for protocols without ports)."""
    if protocol == "all":
        return 0, 65535
    if protocol not in ("tcp", "udp"):
        return None, None
    if low is None or int(low) < 0:
        return 0, 65535
    return int(low), int(high if high is not None else low)


def entry(
    protocol: str, low: int | None, high: int | None, source: str, kind: str
) -> dict[str, Any]:
    """One normalised rule for one source."""
    covers_ports = low is not None and high is not None
    covered = [p for p in WATCHED_PORTS if covers_ports and low <= p <= high]  # type: ignore[operator]
    return {
        "protocol": protocol,
        "from_port": low,
        "to_port": high,
        "source": source,
        "source_kind": kind,
        "is_world_open": source in WORLD,
        "is_all_ports": protocol == "all" or (low == 0 and high == 65535),
        "ports_covered": covered if protocol in _PORT_PROTOCOLS else [],
    }


def sg_entries(permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Security-group permissions → one entry per (rule, source)."""
    found: list[dict[str, Any]] = []
    for perm in permissions:
        protocol = protocol_name(perm.get("IpProtocol", "-1"))
        low, high = port_range(protocol, perm.get("FromPort"), perm.get("ToPort"))
        sources = [(r.get("CidrIp"), "ipv4") for r in perm.get("IpRanges", [])]
        sources += [(r.get("CidrIpv6"), "ipv6") for r in perm.get("Ipv6Ranges", [])]
        sources += [(r.get("GroupId"), "security_group") for r in perm.get("UserIdGroupPairs", [])]
        sources += [(r.get("PrefixListId"), "prefix_list") for r in perm.get("PrefixListIds", [])]
        found += [entry(protocol, low, high, str(s), k) for s, k in sources if s]
    return found


def world_open_ports(
    entries: list[dict[str, Any]], ports: tuple[int, ...], kind: str | None = None
) -> list[int]:
    """Which of ``ports`` (TCP or UDP) an Internet-wide source reaches, optionally for one
    IP family."""
    open_ports = {
        p
        for e in entries
        if e["is_world_open"] and (kind is None or e["source_kind"] == kind)
        for p in e["ports_covered"]
        if p in ports
    }
    return sorted(open_ports)


def nacl_entries(raw: list[dict[str, Any]], egress: bool) -> list[dict[str, Any]]:
    """Network-ACL entries of one direction, in evaluation order."""
    chosen = sorted(
        (e for e in raw if bool(e.get("Egress")) == egress), key=lambda e: e.get("RuleNumber", 0)
    )
    found = []
    for item in chosen:
        protocol = protocol_name(item.get("Protocol", "-1"))
        span = item.get("PortRange") or {}
        low, high = port_range(protocol, span.get("From"), span.get("To"))
        source = item.get("CidrBlock") or item.get("Ipv6CidrBlock") or ""
        kind = "ipv6" if item.get("Ipv6CidrBlock") else "ipv4"
        found.append(
            {
                "rule_number": item.get("RuleNumber"),
                "action": item.get("RuleAction"),
                **entry(protocol, low, high, str(source), kind),
            }
        )
    return found


def nacl_world_open(entries: list[dict[str, Any]], ports: tuple[int, ...]) -> list[int]:
    """Ports that an Internet-wide packet reaches, for some IP family and TCP or UDP.

    An ACL stops at the first entry matching a packet, so each (port, family, protocol)
    is decided by the first world-open entry covering it for that protocol: a TCP deny
    in front does not stop a UDP allow behind it.
    """
    return sorted(
        port
        for port in ports
        if any(
            _first_allows(entries, port, kind, protocol)
            for kind in ("ipv4", "ipv6")
            for protocol in ("tcp", "udp")
        )
    )


def _first_allows(entries: list[dict[str, Any]], port: int, kind: str, protocol: str) -> bool:
    """Whether the first world-open entry matching this packet allows it."""
    first = next(
        (
            e
            for e in entries
            if e["is_world_open"]
            and e["source_kind"] == kind
            and e["protocol"] in (protocol, "all")
            and port in e["ports_covered"]
        ),
        None,
    )
    return first is not None and first["action"] == "allow"
