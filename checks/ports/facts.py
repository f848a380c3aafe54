"""Turn nmap's XML report into ``net.host`` and ``net.service`` resources.

python-nmap runs nmap and checks that it printed XML, but its summary drops what an
audit needs: the ``extraports`` counts (how many ports answered ``closed`` — the proof
that a host is alive when none is open), ``timedout`` hosts, the ``tunnel`` attribute
(TLS-wrapped services) and all but the last CPE. So the report is read here, from nmap's
own XML (produced by the local nmap, whose strings from the network are escaped).

Facts are observations, never verdicts. A fact that this scan could not observe — the
product and version when service detection is off or overran its time on that port,
whether an FTP server offers AUTH TLS when it could not be asked — goes into
``Resource.unknown`` so that a rule reading it ends as ``error`` rather than passing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

from audit.errors import ObservationError
from audit.models import JSONValue, Problem, Reason, Resource, Target
from audit.uri import format_host

ANSWERED_STATES = frozenset({"open", "closed", "unfiltered"})
"""Port states that prove the host replied (``filtered`` means no reply at all)."""
VERSION_FACTS = ("product", "version", "extrainfo", "cpe")
"""Facts only service detection observes."""


@dataclass(frozen=True)
class PortRecord:
    """One ``<port>`` element."""

    port: int
    protocol: str
    state: str
    reason: str
    service: Mapping[str, str] = field(default_factory=dict)
    cpe: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostRecord:
    """One ``<host>`` element: its address, state and ports."""

    address: str
    address_family: str
    state: str
    reason: str
    hostnames: tuple[str, ...] = ()
    timed_out: bool = False
    ports: tuple[PortRecord, ...] = ()
    other_ports: Mapping[str, int] = field(default_factory=dict)
    """``extraports`` counts by state (ports nmap did not list one by one)."""

    def open_ports(self) -> list[int]:
        """Open TCP ports, sorted."""
        return sorted(p.port for p in self.ports if p.state == "open" and p.protocol == "tcp")

    def port_counts(self) -> dict[str, int]:
        """How many scanned ports ended in each state."""
        counts = dict(self.other_ports)
        for record in self.ports:
            counts[record.state] = counts.get(record.state, 0) + 1
        return dict(sorted(counts.items()))

    def answered(self) -> bool:
        """True when the host itself replied: to discovery, or on at least one port.

        With ``-Pn`` nmap marks every host up (reason ``user-set``) without evidence, so
        only port states can tell a live host with nothing open from a silent one.
        """
        if self.reason not in ("user-set", ""):
            return True
        return any(state in ANSWERED_STATES for state in self.port_counts())


@dataclass(frozen=True)
class NmapReport:
    """A parsed nmap XML report."""

    hosts: tuple[HostRecord, ...]
    hosts_up: int = 0
    hosts_total: int = 0
    exit_status: str = "success"
    error: str = ""


def parse_report(xml: str) -> NmapReport:
    """Parse nmap's XML; raise ObservationError(BUG) when it is not a complete report."""
    try:
        root = ET.fromstring(xml)  # noqa: S314 - the local nmap's output, no entities
    except ET.ParseError as exc:
        raise ObservationError(Reason.BUG, f"nmap printed no readable XML ({exc})") from None
    if root.tag != "nmaprun":
        raise ObservationError(Reason.BUG, f"nmap printed <{root.tag}>, not a report")
    finished = root.find("runstats/finished")
    counts = root.find("runstats/hosts")
    return NmapReport(
        hosts=tuple(_host(h) for h in root.findall("host")),
        hosts_up=_int(counts.get("up") if counts is not None else None) or 0,
        hosts_total=_int(counts.get("total") if counts is not None else None) or 0,
        exit_status=(finished.get("exit") or "success") if finished is not None else "error",
        error=(finished.get("errormsg") or "") if finished is not None else "",
    )


def _host(element: ET.Element) -> HostRecord:
    status = element.find("status")
    address, family = _address(element)
    ports = tuple(_port(p) for p in element.findall("ports/port"))
    other: dict[str, int] = {}
    for extra in element.findall("ports/extraports"):
        state = extra.get("state", "")
        other[state] = other.get(state, 0) + (_int(extra.get("count")) or 0)
    return HostRecord(
        address=address,
        address_family=family,
        state=status.get("state", "") if status is not None else "",
        reason=status.get("reason", "") if status is not None else "",
        hostnames=tuple(
            h.get("name", "") for h in element.findall("hostnames/hostname") if h.get("name")
        ),
        timed_out=element.get("timedout") == "true",
        ports=ports,
        other_ports=other,
    )


def _address(element: ET.Element) -> tuple[str, str]:
    """The host's IP address and family (MAC addresses are skipped)."""
    for item in element.findall("address"):
        kind = item.get("addrtype", "")
        if kind in ("ipv4", "ipv6"):
            return item.get("addr", ""), kind
    return "", ""


def _port(element: ET.Element) -> PortRecord:
    state = element.find("state")
    service = element.find("service")
    return PortRecord(
        port=_int(element.get("portid")) or 0,
        protocol=element.get("protocol", ""),
        state=state.get("state", "") if state is not None else "",
        reason=state.get("reason", "") if state is not None else "",
        service=dict(service.attrib) if service is not None else {},
        cpe=tuple(c.text for c in service.findall("cpe") if c.text) if service is not None else (),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# --- resources --------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanFacts:
    """What the scan itself was, shared by every resource it produces."""

    scanned_ports: str
    """The port list (``22,80,8000-8100``) or ``top-1000``."""
    scan_type: str
    service_detection: bool
    hostname: str | None = None
    """The name the target was given by, when it was a name."""
    version_problem: Problem | None = None
    """Why product and version were not observed on any port (service detection off)."""


@dataclass(frozen=True)
class PortDetails:
    """What the steps after the port scan learnt about each open port of one host."""

    missing: Mapping[int, Problem] = field(default_factory=dict)
    """Ports whose service detection gave nothing, and why (their versions are unknown)."""
    ftp_auth_tls: Mapping[int, bool | Problem] = field(default_factory=dict)
    """FTP ports in clear: whether AUTH TLS is offered, or why it is not known."""

    def is_complete(self) -> bool:
        """True when every open port's service detection finished."""
        return not self.missing


def host_key(address: str) -> str:
    """``host://ADDRESS`` (IPv6 unbracketed: there is no port to separate)."""
    return f"host://{address}"


def service_key(address: str, port: int) -> str:
    """``tcp://ADDRESS:PORT`` with IPv6 bracketed."""
    return f"tcp://{format_host(address)}:{port}"


def host_resource(
    host: HostRecord, target: Target, scan: ScanFacts, details: PortDetails | None = None
) -> Resource:
    """The ``net.host`` resource of a host that answered."""
    complete = details is None or details.is_complete()
    facts: dict[str, JSONValue] = {
        "address": host.address,
        "address_family": host.address_family,
        "hostname": scan.hostname or (host.hostnames[0] if host.hostnames else None),
        "state": host.state,
        "reason": host.reason,
        "open_ports": host.open_ports(),
        "open_port_count": len(host.open_ports()),
        "scanned_ports": scan.scanned_ports,
        "port_counts": host.port_counts(),
        "scan_type": scan.scan_type,
        "service_detection": scan.service_detection and complete,
    }
    return Resource(
        type="net.host",
        key=host_key(host.address),
        target=target.uri,
        system=target.system,
        facts=facts,
    )


def service_resources(
    host: HostRecord, target: Target, scan: ScanFacts, details: PortDetails | None = None
) -> list[Resource]:
    """One ``net.service`` resource per open TCP port of the host."""
    details = details or PortDetails()
    hostname = scan.hostname or (host.hostnames[0] if host.hostnames else None)
    return [
        Resource(
            type="net.service",
            key=service_key(host.address, record.port),
            target=target.uri,
            system=target.system,
            facts=_service_facts(host, record, hostname, scan, details),
            unknown=_unknown(record.port, scan, details),
        )
        for record in sorted(host.ports, key=lambda r: r.port)
        if record.state == "open" and record.protocol == "tcp"
    ]


def _version_problem(port: int, scan: ScanFacts, details: PortDetails) -> Problem | None:
    return scan.version_problem or details.missing.get(port)


def _unknown(port: int, scan: ScanFacts, details: PortDetails) -> dict[str, Problem]:
    """Facts of one port that could not be observed, with the reason."""
    problem = _version_problem(port, scan, details)
    unknown = dict.fromkeys(VERSION_FACTS, problem) if problem is not None else {}
    answer = details.ftp_auth_tls.get(port)
    if isinstance(answer, Problem):
        unknown["ftp_auth_tls"] = answer
    return unknown


def _service_facts(
    host: HostRecord,
    record: PortRecord,
    hostname: str | None,
    scan: ScanFacts,
    details: PortDetails,
) -> dict[str, JSONValue]:
    attrs = record.service
    observed = _version_problem(record.port, scan, details) is None
    answer = details.ftp_auth_tls.get(record.port)
    return {
        "address": host.address,
        "hostname": hostname,
        "port": record.port,
        "protocol": record.protocol,
        "state": record.state,
        "reason": record.reason,
        "service": attrs.get("name") or None,
        "product": attrs.get("product") if observed else None,
        "version": attrs.get("version") if observed else None,
        "extrainfo": attrs.get("extrainfo") if observed else None,
        "tunnel": attrs.get("tunnel") or None,
        "cpe": list(record.cpe) if observed else [],
        "ostype": attrs.get("ostype") or None,
        "method": attrs.get("method") or None,
        "conf": _int(attrs.get("conf")),
        "service_detection": scan.service_detection and observed,
        "ftp_auth_tls": answer if isinstance(answer, bool) else None,
    }
