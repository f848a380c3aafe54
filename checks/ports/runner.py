"""Build nmap's arguments from validated values and run it through python-nmap.

The argument list is made of fixed flags and numbers we computed; the only values that
come from a target are its host (validated by :mod:`checks.ports.targets`, or an address
pinned by the scope guard) and its port list (digits, commas and dashes). python-nmap
runs ``nmap -oX - ...`` as an argument list, never through a shell, and kills it when
the time budget is spent.

Timing, measured with nmap 7.93 on loopback, ``-sV --version-intensity 2``, one port a
run (bench/RESULTS.md, "ports"): a plain connect scan of a few ports takes well under a
second; an SSH server that greets first 0.2 s; a service that waits for the client to
speak first (HTTP) 5.3 s, because nmap's NULL probe waits 6 s for a banner; an
``openssl s_server -www`` (TLS, then HTTP inside it) 22.4 s; a port that accepts but
never answers 26.3 s (120 s or more at nmap's default intensity 7, 6 s at intensity 0).
Rempart uses intensity 2 by default: it still tries the HTTP, TLS and generic probes on
every port, which recognise most services on non-standard ports; an inventory may change
it (``ports: {version_intensity: 0-9}``; Redis or MongoDB on a non-standard port need 8).
Because the slowest of these fits in the default 30 s budget only when it does not wait
for the others, service detection runs one port number per nmap run, in parallel (see
:mod:`checks.ports.versions`). nmap's ``--host-timeout`` throws away everything it learnt
about a host that overruns, so it is only given to runs over several hosts (one slow
host must not cost the others their versions); a run over one host is bounded by the
process deadline instead, which costs at most that one port's versions.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audit.errors import DependencyError, ObservationError
from audit.models import Reason

NMAP_MISSING = "nmap is not installed: apt-get install nmap"
DEFAULT_VERSION_INTENSITY = 2
DISCOVERY_PORTS = "21,22,23,25,80,443,445,3389,8080"
"""TCP ports probed to find live hosts in a network (nmap's unprivileged default is only
80 and 443, which misses hosts that expose only SSH or RDP)."""
SV_OVERRUN_S = 8.0
"""How far nmap may run past ``--host-timeout`` during service detection: it checks the
limit only between probes, and a probe waits up to 7.5 s for an answer (measured: a 3 s
limit ended after 6.4 s, a 7.2 s limit after 11.4 s)."""
PORT_SCAN_MARGIN_S = 1.5
"""Time kept after a plain port scan's ``--host-timeout``: nmap's own overrun without
probes (well under a second, measured) and reading its report."""
MIN_HOST_TIMEOUT_S = 1.0
MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class ScanRequest:
    """One nmap run: validated hosts of one IP version and what to do with them."""

    hosts: tuple[str, ...]
    ipv6: bool = False
    ports: str | None = None
    """Canonical port list, or None for nmap's top 1000 ports."""
    service_detection: bool = True
    syn: bool = False
    discovery: bool = False
    """True for networks: find live hosts first; False: treat every host as up (-Pn)."""
    version_intensity: int = DEFAULT_VERSION_INTENSITY


@dataclass(frozen=True)
class NmapRun:
    """What one nmap run printed: its XML report and the errors it wrote on stderr."""

    xml: str
    errors: tuple[str, ...]
    elapsed_s: float
    command: str


def ensure_nmap() -> str:
    """Path of the nmap program on ``PATH``; raise DependencyError when it is absent.

    Only ``PATH`` is searched (python-nmap would also try fixed locations), so what the
    operator's environment says is what is used. The CLI calls this before scanning.
    """
    path = shutil.which("nmap")
    if path is None:
        raise DependencyError(NMAP_MISSING)
    return path


OPTIONS = ("version_intensity",)


def validate_options(block: Any) -> None:
    """Check the inventory's ``ports:`` settings block (raise ValueError with one line)."""
    if not isinstance(block, Mapping):
        raise ValueError("settings must be a mapping, e.g. {version_intensity: 2}")
    unknown = sorted(str(name) for name in block if name not in OPTIONS)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    version_intensity(block)


def version_intensity(options: Mapping[str, Any]) -> int:
    """nmap's ``--version-intensity`` from the family's settings (default 2)."""
    value = options.get("version_intensity", DEFAULT_VERSION_INTENSITY)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise ValueError(f"version_intensity must be an integer from 0 to 9, not {value!r}")
    return value


def port_scan_timeout(remaining_s: float) -> float:
    """Seconds nmap may spend on one host for the port scan: nearly all that is left.

    The open ports come first: service detection only enriches them, and a host whose
    port scan overruns is lost whole, so the port scan is never cut short to leave room
    for versions (a 30 s budget gives it 28.5 s; it usually needs well under one).
    """
    return max(MIN_HOST_TIMEOUT_S, remaining_s - PORT_SCAN_MARGIN_S)


def version_host_timeout(remaining_s: float, host_count: int) -> float | None:
    """``--host-timeout`` for a service-detection run, or None for a run over one host.

    Over several hosts, each host gets its own limit so that one slow host does not make
    the whole run miss the deadline; over one host the process deadline is the limit
    (a 30 s budget lets a 26 s probe sequence finish, where a host timeout would stop
    it at 22 s minus nmap's overrun).
    """
    if host_count <= 1:
        return None
    return max(MIN_HOST_TIMEOUT_S, remaining_s - SV_OVERRUN_S)


def build_arguments(
    request: ScanRequest, *, is_root: bool, host_timeout_s: float | None
) -> list[str]:
    """nmap's arguments (without hosts and ``-p``), from validated values only."""
    args = ["-6"] if request.ipv6 else []
    args.append("-sS" if request.syn else "-sT")
    if request.service_detection:
        args += ["-sV", "--version-intensity", str(int(request.version_intensity))]
    args += _discovery_arguments(request, is_root)
    args += ["-n", "-T4"]
    if host_timeout_s is not None:
        args += ["--host-timeout", f"{int(host_timeout_s * 1000)}ms"]
    if request.ports is None:
        args += ["--top-ports", "1000"]
    if not is_root:
        args.append("--unprivileged")
    return args


def _discovery_arguments(request: ScanRequest, is_root: bool) -> list[str]:
    """``-Pn`` for named hosts (probe them even if they ignore pings); probes for networks."""
    if not request.discovery:
        return ["-Pn"]
    probes = [f"-PS{DISCOVERY_PORTS}"]
    if is_root:
        probes += ["-PE", "-PA80"]
    return probes


def run_nmap(
    nmap_path: str, request: ScanRequest, arguments: list[str], timeout_s: float
) -> NmapRun:
    """Run nmap once; raise ObservationError (timeout, bug) when it gives no report."""
    import nmap

    try:
        scanner = nmap.PortScanner(nmap_search_path=(nmap_path,))
    except nmap.PortScannerError:
        raise ObservationError(Reason.NOT_IMPLEMENTED, NMAP_MISSING) from None
    hosts = " ".join(request.hosts)
    started = time.monotonic()
    try:
        result = scanner.scan(
            hosts=hosts,
            ports=request.ports,
            arguments=" ".join(arguments),
            timeout=max(1.0, timeout_s),
        )
    except nmap.PortScannerTimeout:
        raise ObservationError(
            Reason.TIMEOUT, f"nmap did not finish within {timeout_s:.0f} s"
        ) from None
    except nmap.PortScannerError as exc:
        raise ObservationError(Reason.BUG, "nmap failed: " + sanitise(str(exc))) from None
    errors = tuple(dict.fromkeys(sanitise(e) for e in result["nmap"]["scaninfo"].get("error", [])))
    output = scanner.get_nmap_last_output()
    xml = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
    return NmapRun(
        xml=xml,
        errors=tuple(e for e in errors if e),
        elapsed_s=time.monotonic() - started,
        command=str(result["nmap"].get("command_line") or ""),
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def sanitise(message: str) -> str:
    """One line of printable text, at most MESSAGE_LIMIT characters (nmap's messages can
    quote what a server sent)."""
    text = " ".join(_CONTROL.sub(" ", message).split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
