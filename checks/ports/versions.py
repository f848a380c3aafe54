"""Service detection after the port scan: one port number per nmap run, in parallel.

Why not one ``nmap -sV`` over the whole host: nmap's version probes for one slow service
(an ``openssl s_server`` costs 22.4 s at intensity 2, a port that never answers 26.3 s)
hold the host's run open, and when the run is stopped (``--host-timeout`` or the
deadline) nmap reports nothing for the host, so an old OpenSSH next to a slow TLS port
lost its version and the SSH version rule could not fire. Here the open ports are known
first (a plain port scan, well under a second on most hosts) and each port number gets
its own run, over every host where it is open, all of them in parallel and each under
the target's deadline: a slow service only ever costs its own version facts, which are
then marked unknown with the reason (``timeout``), never dropped. Grouping by port number
rather than by host keeps the number of nmap processes small on networks (one per
distinct open port), while ``--host-timeout`` keeps one slow host from stopping the run
for the others.

An FTP service in clear is then asked whether it offers explicit TLS
(:mod:`checks.ports.ftp`), by the same worker, right after its port's run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from audit.errors import ObservationError
from audit.models import Problem, Reason
from checks.ports import ftp
from checks.ports.facts import HostRecord, PortRecord, parse_report
from checks.ports.runner import (
    ScanRequest,
    build_arguments,
    run_nmap,
    sanitise,
    version_host_timeout,
)

PARALLEL_RUNS = 16
"""nmap processes at once for one target. Each mostly waits for replies (0.3 s of CPU and
46 MiB of resident memory, mostly shared, for one port on loopback): 16 let a host's
usual ports all run side by side, so the slowest service sets the time, as in one nmap
run (with 8, 20 ports took 1.6 times as long as nmap alone: bench/RESULTS.md)."""
MIN_RUN_S = 1.0
"""Below this much time left, a run is not started: it could not finish."""
MIN_FTP_S = 0.5
"""Below this much time left, the FTP exchange is not started."""

Outcome = PortRecord | Problem
"""What service detection gave for one (host, port): nmap's record, or why there is none."""
Answer = bool | Problem
"""What the FTP exchange gave: whether AUTH TLS is offered, or why it is not known."""


@dataclass(frozen=True)
class Unit:
    """One service-detection run: a port number and the hosts where it is open."""

    port: int
    hosts: tuple[str, ...]
    names: Mapping[str, str | None] = field(default_factory=dict)
    """The service name the port scan guessed for each host (from the port number)."""


@dataclass(frozen=True)
class Job:
    """What every run of one target shares."""

    nmap_path: str
    template: ScanRequest
    is_root: bool
    deadline: float

    def remaining(self) -> float:
        """Seconds left before the target's deadline."""
        return self.deadline - time.monotonic()


@dataclass
class Versions:
    """Service detection's results for one target, by (address, port)."""

    outcomes: dict[tuple[str, int], Outcome] = field(default_factory=dict)
    ftp_auth_tls: dict[tuple[str, int], Answer] = field(default_factory=dict)


def plan_units(hosts: Iterable[HostRecord]) -> list[Unit]:
    """One unit per open port number, over the hosts where it is open, lowest port first."""
    by_port: dict[int, dict[str, str | None]] = {}
    for host in hosts:
        for record in host.ports:
            if record.state == "open" and record.protocol == "tcp":
                by_port.setdefault(record.port, {})[host.address] = record.service.get("name")
    return [Unit(port, tuple(names), names) for port, names in sorted(by_port.items())]


def detect(job: Job, units: list[Unit]) -> Versions:
    """Run every unit, in parallel, within the job's deadline."""
    found = Versions()
    if not units:
        return found
    with ThreadPoolExecutor(
        max_workers=min(PARALLEL_RUNS, len(units)), thread_name_prefix="nmap-sv"
    ) as pool:
        results = pool.map(lambda u: _unit(job, u), units)
        for unit, (outcomes, answers) in zip(units, results, strict=True):
            found.outcomes.update({(a, unit.port): o for a, o in outcomes.items()})
            found.ftp_auth_tls.update({(a, unit.port): v for a, v in answers.items()})
    return found


def _unit(job: Job, unit: Unit) -> tuple[dict[str, Outcome], dict[str, Answer]]:
    """Service detection on one port number, then the FTP exchange where it applies."""
    outcomes = _detect_unit(job, unit)
    answers = {
        address: _ask_ftp(job, address, unit.port)
        for address, outcome in outcomes.items()
        if is_clear_ftp(outcome, unit.names.get(address))
    }
    return outcomes, answers


def is_clear_ftp(outcome: Outcome, guessed: str | None) -> bool:
    """An FTP service not wrapped in TLS (by nmap's name, or the port's when detection failed)."""
    if isinstance(outcome, Problem):
        return guessed == "ftp"
    return outcome.service.get("name") == "ftp" and outcome.service.get("tunnel") != "ssl"


def _detect_unit(job: Job, unit: Unit) -> dict[str, Outcome]:
    remaining = job.remaining()
    if remaining < MIN_RUN_S:
        late = Problem(Reason.TIMEOUT, "not observed: no time left for service detection")
        return _all(unit, late)
    request = replace(job.template, hosts=unit.hosts, ports=str(unit.port), service_detection=True)
    limit = version_host_timeout(remaining, len(unit.hosts))
    arguments = build_arguments(request, is_root=job.is_root, host_timeout_s=limit)
    try:
        report = parse_report(run_nmap(job.nmap_path, request, arguments, remaining).xml)
    except ObservationError as exc:
        return _all(unit, Problem(exc.reason, f"not observed: service detection: {exc}"))
    if report.exit_status == "error":
        message = f"not observed: nmap stopped: {sanitise(report.error)}"
        return _all(unit, Problem(Reason.BUG, message))
    hosts = {host.address: host for host in report.hosts}
    return {a: _outcome(hosts.get(a), unit.port, limit or remaining) for a in unit.hosts}


def _all(unit: Unit, problem: Problem) -> dict[str, Outcome]:
    return dict.fromkeys(unit.hosts, problem)


def _outcome(host: HostRecord | None, port: int, limit: float) -> Outcome:
    """The record of ``port`` on ``host``, or why service detection did not give it."""
    if host is not None and host.timed_out:
        message = f"not observed: service detection did not finish within {limit:.0f} s"
        return Problem(Reason.TIMEOUT, message)
    record = next((r for r in host.ports if r.port == port), None) if host else None
    if record is None or record.state != "open":
        state = record.state if record is not None else "not reported"
        message = f"not observed: the port was {state} during service detection"
        return Problem(Reason.UNREACHABLE, message)
    return record


def _ask_ftp(job: Job, address: str, port: int) -> Answer:
    remaining = job.remaining()
    if remaining < MIN_FTP_S:
        return Problem(Reason.TIMEOUT, "not observed: no time left to ask for AUTH TLS")
    try:
        return ftp.offers_auth_tls(address, port, min(ftp.PROBE_S, remaining))
    except ObservationError as exc:
        return Problem(exc.reason, f"not observed: AUTH TLS: {exc}")
