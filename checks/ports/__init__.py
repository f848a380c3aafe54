"""The ``ports`` check family: open TCP ports and the services behind them, through nmap.

Targets
-------
``ports://HOST[?ports=SPEC&sv=0|1&scan=connect|syn]``

- ``HOST``: a host name, an IPv4 address, a bracketed IPv6 address (``ports://[::1]``),
  or a network ``ADDRESS/PREFIX`` no wider than an IPv4 /16 or an IPv6 /112
  (``ports://10.0.0.0/24``, ``ports://[fd00::]/120``). A name pinned by the scope guard
  is scanned on every address it resolved to, IPv4 and IPv6.
- ``ports``: TCP ports in nmap's syntax, numbers and ranges only (``22,80,8000-8100``,
  optionally prefixed ``T:``); default: nmap's 1000 most common TCP ports.
- ``sv``: service and version detection (nmap ``-sV``, light intensity), on by default:
  after a plain port scan, one nmap run per open port number, in parallel, so a slow
  service costs only its own version; an FTP service in clear is also asked whether it
  offers ``AUTH TLS``. ``sv=0`` only lists open ports, much faster on large networks.
- ``scan``: ``connect`` (default; full TCP handshakes, no privileges needed) or ``syn``
  (half-open, needs root; asking for it without root is a problem, never a silent
  downgrade).

Single hosts are probed without host discovery (``-Pn``), so loopback and hosts that
ignore pings are scanned; a host that replies on no port at all is reported
``unreachable`` rather than "no open ports". Networks are swept with host discovery
first (TCP probes to 21,22,23,25,80,443,445,3389,8080, plus ICMP echo as root); hosts
that do not answer are simply absent, and a network where nothing answered is a problem.
No reverse DNS lookups are made. nmap must be installed (``apt-get install nmap``).

Inventory settings: ``ports: {version_intensity: N}`` sets nmap's version intensity (0-9,
default 2). Higher finds more services on unusual ports (Redis or MongoDB off their port
need 8) but a port that never answers then costs minutes instead of about 26 s.

Resource types and facts
------------------------
``net.host`` (key ``host://ADDRESS``): ``address``, ``address_family``, ``hostname``,
``state``, ``reason``, ``open_ports``, ``open_port_count``, ``scanned_ports``,
``port_counts``, ``scan_type``, ``service_detection``.

``net.service`` (key ``tcp://ADDRESS:PORT``): ``address``, ``hostname``, ``port``,
``protocol``, ``state``, ``reason``, ``service``, ``product``, ``version``,
``extrainfo``, ``tunnel``, ``cpe``, ``ostype``, ``method``, ``conf``,
``service_detection``, ``ftp_auth_tls``. ``product``, ``version``, ``extrainfo`` and
``cpe`` are unknown when service detection was off or did not finish on that port (rules
reading them end as ``error``); ``ftp_auth_tls`` is unknown when an FTP server in clear
could not be asked whether it offers AUTH TLS.

The meaning of every fact is in :mod:`checks.ports.docs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audit.models import Observation, Target
from audit.plugins import CheckContext, CheckFamily
from checks.ports.docs import RESOURCE_TYPES
from checks.ports.targets import parse

if TYPE_CHECKING:
    from audit.labkit import DemoContext, DemoPart


def collect(target: Target, ctx: CheckContext) -> Observation:
    """Scan one ``ports://`` target (see :mod:`checks.ports.collect`)."""
    from checks.ports.collect import collect as run

    return run(target, ctx)


def validate_options(block: Any) -> None:
    """Check the inventory's ``ports:`` settings block (raise ValueError)."""
    from checks.ports.runner import validate_options as check

    check(block)


def preflight() -> None:
    """Raise DependencyError when nmap is not installed (the CLI calls it before scanning)."""
    from checks.ports.runner import ensure_nmap

    ensure_nmap()


def _demo(ctx: DemoContext) -> DemoPart:
    """This family's part of ``rempart demo``; the lab is imported only when it runs."""
    from checks.ports.lab import demo_part

    return demo_part(ctx)


FAMILY = CheckFamily(
    name="ports",
    description="Open TCP ports and the services behind them (product, version), "
    "enumerated with nmap on hosts and networks.",
    schemes=("ports",),
    resource_types=RESOURCE_TYPES,
    parse=parse,
    collect=collect,
    preflight=preflight,
    validate_options=validate_options,
    demo=_demo,
)

__all__ = ["FAMILY", "collect", "preflight", "validate_options"]
