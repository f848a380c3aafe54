"""The resource types of the ``ports`` family and their facts (a public contract).

Policies depend on these names; ``rempart checks list --facts`` prints them and a test
checks that the package docstring and these objects agree.
"""

from __future__ import annotations

from audit.plugins import FactDoc, ResourceTypeDoc

NET_HOST = ResourceTypeDoc(
    name="net.host",
    description="A host that replied to the scan, keyed host://ADDRESS. Hosts that did "
                "not reply are problems (unreachable, timeout), never 'no open ports'.",
    facts=(
        FactDoc("address", "str", "IP address scanned (IPv6 compressed)."),
        FactDoc("address_family", "str", "ipv4 or ipv6."),
        FactDoc("hostname", "str | null", "The name the target was given by, if any "
                "(no reverse DNS lookups are made)."),
        FactDoc("state", "str", "nmap's host state: up."),
        FactDoc("reason", "str", "Why nmap holds the host up: user-set (probed without "
                "discovery, and some port replied), syn-ack, conn-refused, echo-reply..."),
        FactDoc("open_ports", "list[int]", "Open TCP ports, sorted."),
        FactDoc("open_port_count", "int", "Number of open TCP ports."),
        FactDoc("scanned_ports", "str", "The port list scanned (22,80,8000-8100) or "
                "top-1000 (nmap's 1000 most common TCP ports)."),
        FactDoc("port_counts", "dict[str, int]", "Scanned ports by final state: open, "
                "closed (the host replied with a reset), filtered (no reply)."),
        FactDoc("scan_type", "str", "connect (full TCP connect, no privileges needed) or "
                "syn (half-open, root only)."),
        FactDoc("service_detection", "bool", "True when products and versions were "
                "observed (nmap -sV ran and finished for this host)."),
    ),
)

NET_SERVICE = ResourceTypeDoc(
    name="net.service",
    description="One open TCP port of a host, keyed tcp://ADDRESS:PORT (IPv6 bracketed). "
                "product, version, extrainfo and cpe are unknown (rules reading them end "
                "as error) when service detection was off (sv=0) or overran its time.",
    facts=(
        FactDoc("address", "str", "IP address of the host."),
        FactDoc("hostname", "str | null", "The name the target was given by, if any."),
        FactDoc("port", "int", "TCP port number."),
        FactDoc("protocol", "str", "Always tcp."),
        FactDoc("state", "str", "Always open (closed and filtered ports are not services)."),
        FactDoc("reason", "str", "How nmap saw the port open (syn-ack)."),
        FactDoc("service", "str | null", "nmap's service name: found by probing with "
                "service detection (mysql on any port), else guessed from the port number "
                "(see method); null when nmap has no name."),
        FactDoc("product", "str | null", "Product nmap recognised (OpenSSH, MySQL, nginx)."),
        FactDoc("version", "str | null", "Version as nmap reports it (7.4, 9.6p1 Ubuntu "
                "3ubuntu13, 5.5.62-log)."),
        FactDoc("extrainfo", "str | null", "nmap's extra information (protocol 2.0, "
                "Ubuntu Linux)."),
        FactDoc("tunnel", "str | null", "ssl when the service is wrapped in TLS (found by "
                "service detection); null otherwise, and always null with sv=0."),
        FactDoc("cpe", "list[str]", "CPE names of the product (cpe:/a:openbsd:openssh:7.4)."),
        FactDoc("ostype", "str | null", "Operating system the service banner reveals."),
        FactDoc("method", "str | null", "probed (service detection recognised the "
                "service) or table (name guessed from the port number)."),
        FactDoc("conf", "int | null", "nmap's confidence in the service name, 0-10 "
                "(10: probed and matched; 3: table guess)."),
        FactDoc("service_detection", "bool", "True when product and version were observed."),
    ),
)

RESOURCE_TYPES = (NET_HOST, NET_SERVICE)
