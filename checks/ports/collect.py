"""Observe a ``ports://`` target: plan nmap runs, run them within the budget, read facts.

A target becomes one nmap run per IP version (a name pinned by the scope guard to both
IPv4 and IPv6 addresses is scanned on both: exposure over IPv6 is a classic blind spot).
Every failure is data: a host that never replied, a scan that overran, a missing nmap
or an nmap error becomes a :class:`Problem`, never "no open ports" and never an
exception that stops the scan.

Budget: the whole target gets ``ctx.timeout`` seconds (30 by default), in two steps.
First a plain port scan (no version probes) finds the open ports; it may use nearly all
the budget, because a host whose port scan overruns is lost whole, and it usually takes
well under a second. Then service detection runs one port number per nmap run, all in
parallel, until the deadline (:mod:`checks.ports.versions`): a port whose detection did
not finish keeps its port and state, and its product and version are unknown with the
reason (``timeout``), never silently absent; the other ports keep what was identified.
The default 30 s is chosen from measurements (:mod:`checks.ports.runner`, and
bench/RESULTS.md): the slowest realistic service measured on loopback, a port that
accepts and never answers, needs 26.3 s at version intensity 2 and an ``openssl
s_server`` 22.4 s; running side by side, they all fit.
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
    PortDetails,
    PortRecord,
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
    port_scan_timeout,
    run_nmap,
    sanitise,
    version_intensity,
)
from checks.ports.targets import host_spec
from checks.ports.versions import MIN_RUN_S, Job, Versions, detect, plan_units

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
    """The port scan of one request, then service detection on the open ports found."""
    port_scan = replace(request, service_detection=False)
    report, limit = _run(run, port_scan, out)
    if report is None:
        return
    hosts = _read_hosts(run, port_scan, report, limit, out)
    versions = _versions(run, request, hosts)
    facts = _scan_facts(run.target, request)
    for host in hosts:
        _add_host(run.target, host, facts, versions, out)


def _run(run: RunContext, request: ScanRequest, out: Collected) -> tuple[NmapReport | None, float]:
    """Run the port scan within what is left of the budget; problems go to ``out``."""
    remaining = run.remaining()
    if remaining < MIN_RUN_S:
        out.problems += _each_host(
            run, request, Reason.TIMEOUT, f"no time left to scan (budget {run.ctx.timeout:.0f} s)"
        )
        return None, 0.0
    limit = port_scan_timeout(remaining)
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


def _versions(run: RunContext, request: ScanRequest, hosts: list[HostRecord]) -> Versions:
    """Service detection on the open ports of the hosts that answered (none with sv=0)."""
    if not request.service_detection:
        return Versions()
    template = replace(request, hosts=(), discovery=False)
    job = Job(run.nmap_path, template, run.ctx.is_root, run.deadline)
    return detect(job, plan_units(hosts))


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
    run: RunContext, request: ScanRequest, report: NmapReport, limit: float, out: Collected
) -> list[HostRecord]:
    """Hosts that replied; problems for silent hosts and hosts whose scan overran."""
    answered = []
    for host in report.hosts:
        if host.timed_out:
            message = f"no result from {host.address} within {limit:.0f} s"
            out.problems.append(run.problem(Reason.TIMEOUT, message, host.address))
        elif host.answered():
            answered.append(host)
        else:
            out.problems.append(run.problem(Reason.UNREACHABLE, _silent(host), host.address))
    return answered


def _add_host(
    target: Target, host: HostRecord, facts: ScanFacts, versions: Versions, out: Collected
) -> None:
    """The host and its services, with what service detection learnt merged in."""
    merged, details = _merge(host, facts, versions)
    out.resources.append(host_resource(merged, target, facts, details))
    out.resources.extend(service_resources(merged, target, facts, details))


def _merge(
    host: HostRecord, facts: ScanFacts, versions: Versions
) -> tuple[HostRecord, PortDetails]:
    """Replace each port's record by its service-detection record where there is one."""
    ports: list[PortRecord] = []
    missing: dict[int, Problem] = {}
    for record in host.ports:
        outcome = versions.outcomes.get((host.address, record.port))
        if isinstance(outcome, Problem):
            missing[record.port] = outcome
        ports.append(outcome if isinstance(outcome, PortRecord) else record)
    answers = {
        port: answer
        for (address, port), answer in versions.ftp_auth_tls.items()
        if address == host.address
    }
    if facts.version_problem is not None:
        answers = _ftp_unasked(host, facts.version_problem)
    return replace(host, ports=tuple(ports)), PortDetails(missing, answers)


def _ftp_unasked(host: HostRecord, problem: Problem) -> dict[int, bool | Problem]:
    """With sv=0, FTP ports (named from their number) were not asked about AUTH TLS."""
    return {
        record.port: problem
        for record in host.ports
        if record.state == "open" and record.service.get("name") == "ftp"
    }


def _silent(host: HostRecord) -> str:
    scanned = sum(host.port_counts().values())
    return (
        f"no reply from {host.address} on any of the {scanned} scanned ports "
        "(host down, or every port filtered)"
    )
