"""Observe a ``ports://`` target: plan nmap runs, run them within the budget, read facts.

A target becomes one nmap run per IP version (a name pinned by the scope guard to both
IPv4 and IPv6 addresses is scanned on both: exposure over IPv6 is a classic blind spot).
Every failure is data: a host that never replied, a scan that overran, a missing nmap
or an nmap error becomes a :class:`Problem`, never "no open ports" and never an
exception that stops the scan.

Budget: the whole target gets ``ctx.timeout`` seconds. With service detection, nmap may
spend part of it per host (``--host-timeout``); a host that overruns loses everything
nmap learnt about it, so it is scanned again without service detection in the time left,
and its services are reported with product and version marked unknown (reason
``timeout``) instead of being dropped.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field, replace

from audit.errors import DependencyError, ObservationError
from audit.models import Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext
from checks.ports.facts import (
    HostRecord,
    NmapReport,
    ScanFacts,
    host_key,
    host_resource,
    parse_report,
    service_resources,
)
from checks.ports.runner import (
    DISCOVERY_PORTS,
    ScanRequest,
    build_arguments,
    ensure_nmap,
    host_timeout,
    run_nmap,
    sanitise,
    version_intensity,
)
from checks.ports.targets import host_spec

MIN_RUN_S = 1.0
"""Below this much time left, a run is not started: it could not finish."""
SV_OFF = "not observed: service detection is off (sv=0)"
NETWORK_HINT = "; a network needs a larger --timeout, or sv=0, or smaller networks"


@dataclass
class Collected:
    """Resources and problems gathered across the runs of one target."""

    resources: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class RunContext:
    """What every step of one target's scan needs to know."""

    target: Target
    ctx: CheckContext
    nmap_path: str
    deadline: float
    single_host: bool
    """True when the target is one host: its problems are about the target itself."""

    def remaining(self) -> float:
        """Seconds left in the target's budget."""
        return self.deadline - time.monotonic()

    def problem(self, reason: Reason, message: str, address: str | None = None) -> Problem:
        """A problem about one host (keyed by it) or about the whole target."""
        key = None if self.single_host or address is None else host_key(address)
        return Problem(reason, message, key=key)


def collect(target: Target, ctx: CheckContext) -> Observation:
    """Enumerate the open TCP ports (and services) of a ``ports://`` target."""
    deadline = time.monotonic() + ctx.timeout
    try:
        nmap_path = ensure_nmap()
        requests = plan_requests(target, ctx)
    except DependencyError as exc:
        return Observation(target, problems=(Problem(Reason.NOT_IMPLEMENTED, str(exc)),))
    except ObservationError as exc:
        return Observation(target, problems=(Problem(exc.reason, str(exc)),))
    run = RunContext(target, ctx, nmap_path, deadline, _is_single_host(requests))
    collected = Collected()
    for request in requests:
        _scan(run, request, collected)
    return Observation(target, tuple(collected.resources), tuple(collected.problems))


def plan_requests(target: Target, ctx: CheckContext) -> list[ScanRequest]:
    """The nmap runs a target needs; raise ObservationError for what cannot be run."""
    syn = target.param("scan") == "syn"
    if syn and not ctx.is_root:
        raise ObservationError(
            Reason.ACCESS_DENIED,
            "scan=syn needs root (raw sockets); run as root or use scan=connect, the default",
        )
    try:
        intensity = version_intensity(ctx.family_options("ports"))
    except ValueError as exc:
        raise ObservationError(Reason.BUG, f"inventory ports settings: {exc}") from None
    base = ScanRequest(
        hosts=(),
        ports=target.param("ports"),
        service_detection=target.param("sv", "1") == "1",
        syn=syn,
        version_intensity=intensity,
    )
    host = host_spec(target)
    if host.is_network:
        return [replace(base, hosts=(host.text,), ipv6=host.version == 6, discovery=True)]
    if not host.is_name:
        return [replace(base, hosts=(host.text,), ipv6=host.version == 6)]
    if not target.addresses:
        return [replace(base, hosts=(host.text,))]
    return _pinned_requests(base, target.addresses)


def _pinned_requests(base: ScanRequest, addresses: tuple[str, ...]) -> list[ScanRequest]:
    """One run per IP version over the addresses the scope guard pinned."""
    parsed = [ipaddress.ip_address(a) for a in dict.fromkeys(addresses)]
    requests = []
    for version in (4, 6):
        hosts = tuple(str(a) for a in parsed if a.version == version)
        if hosts:
            requests.append(replace(base, hosts=hosts, ipv6=version == 6))
    return requests


def _is_single_host(requests: list[ScanRequest]) -> bool:
    return len(requests) == 1 and len(requests[0].hosts) == 1 and not requests[0].discovery


def _scan(run: RunContext, request: ScanRequest, out: Collected) -> None:
    """One nmap run and, when service detection overran, the plain-scan fallback."""
    report, limit = _run(run, request, out)
    if report is None:
        return
    facts = _scan_facts(run.target, request)
    overran = _read_hosts(run, request, report, facts, out)
    if not overran:
        return
    if not request.service_detection:
        for address in overran:
            out.problems.append(
                run.problem(
                    Reason.TIMEOUT, f"no result from {address} within {limit:.0f} s", address
                )
            )
        return
    _fallback(run, request, overran, limit, out)


def _run(run: RunContext, request: ScanRequest, out: Collected) -> tuple[NmapReport | None, float]:
    """Run nmap within what is left of the budget; problems go to ``out``."""
    remaining = run.remaining()
    if remaining < MIN_RUN_S:
        out.problems += _each_host(
            run, request, Reason.TIMEOUT, f"no time left to scan (budget {run.ctx.timeout:.0f} s)"
        )
        return None, 0.0
    limit = host_timeout(remaining, request.service_detection)
    arguments = build_arguments(request, is_root=run.ctx.is_root, host_timeout_s=limit)
    try:
        result = run_nmap(run.nmap_path, request, arguments, remaining)
        report = parse_report(result.xml)
    except ObservationError as exc:
        hint = NETWORK_HINT if request.discovery and exc.reason is Reason.TIMEOUT else ""
        out.problems += _each_host(run, request, exc.reason, f"{exc}{hint}")
        return None, limit
    if report.exit_status == "error":
        out.problems += _each_host(
            run, request, Reason.BUG, f"nmap stopped: {sanitise(report.error)}"
        )
        return None, limit
    if not report.hosts:
        out.problems += _each_host(run, request, *_no_hosts(request, result.errors))
        return None, limit
    return report, limit


def _each_host(
    run: RunContext, request: ScanRequest, reason: Reason, message: str
) -> list[Problem]:
    """A failed run: one problem per host it was for (one for a whole network)."""
    if request.discovery:
        return [run.problem(reason, message)]
    if len(request.hosts) == 1:
        return [run.problem(reason, message, request.hosts[0])]
    return [run.problem(reason, f"{address}: {message}", address) for address in request.hosts]


def _no_hosts(request: ScanRequest, errors: tuple[str, ...]) -> tuple[Reason, str]:
    """Why nmap reported no host at all."""
    detail = "; ".join(errors)
    if "Failed to resolve" in detail:
        return Reason.NOT_FOUND, f"{request.hosts[0]} does not resolve"
    if request.discovery:
        return Reason.UNREACHABLE, (
            f"no host in {request.hosts[0]} answered (discovery probes: TCP {DISCOVERY_PORTS})"
        )
    return Reason.UNREACHABLE, "nmap reported no host" + (f": {detail}" if detail else "")


def _scan_facts(target: Target, request: ScanRequest) -> ScanFacts:
    spec = host_spec(target)
    problem = None if request.service_detection else Problem(Reason.NOT_IMPLEMENTED, SV_OFF)
    return ScanFacts(
        scanned_ports=request.ports or "top-1000",
        scan_type="syn" if request.syn else "connect",
        service_detection=request.service_detection,
        hostname=spec.text if spec.is_name else None,
        version_problem=problem,
    )


def _read_hosts(
    run: RunContext, request: ScanRequest, report: NmapReport, facts: ScanFacts, out: Collected
) -> list[str]:
    """Resources for hosts that replied, problems for silent ones; returns overran hosts."""
    overran = []
    for host in report.hosts:
        if host.timed_out:
            overran.append(host.address)
        elif host.answered():
            _add_host(run.target, host, facts, out)
        else:
            out.problems.append(run.problem(Reason.UNREACHABLE, _silent(host), host.address))
    return overran


def _add_host(target: Target, host: HostRecord, facts: ScanFacts, out: Collected) -> None:
    out.resources.append(host_resource(host, target, facts))
    out.resources.extend(service_resources(host, target, facts))


def _silent(host: HostRecord) -> str:
    scanned = sum(host.port_counts().values())
    return (
        f"no reply from {host.address} on any of the {scanned} scanned ports "
        "(host down, or every port filtered)"
    )


def _fallback(
    run: RunContext, request: ScanRequest, overran: list[str], limit: float, out: Collected
) -> None:
    """Scan hosts whose service detection overran again, ports only, in the time left."""
    plain = replace(request, hosts=tuple(overran), service_detection=False, discovery=False)
    report, plain_limit = _run(run, plain, out)
    if report is None:
        return
    problem = Problem(
        Reason.TIMEOUT, f"not observed: service detection did not finish within {limit:.0f} s"
    )
    facts = replace(_scan_facts(run.target, plain), version_problem=problem)
    for address in _read_hosts(run, plain, report, facts, out):
        out.problems.append(
            run.problem(
                Reason.TIMEOUT, f"no result from {address} within {plain_limit:.0f} s", address
            )
        )
