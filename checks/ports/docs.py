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
        FactDoc("address", "string", "IP address scanned (IPv6 compressed)."),
        FactDoc("address_family", "string", "ipv4 or ipv6."),
        FactDoc(
            "hostname",
            "string",
            "The name the target was given by, null for an "
            "address (no reverse DNS lookups are made).",
        ),
        FactDoc("state", "string", "nmap's host state: up."),
        FactDoc(
            "reason",
            "string",
            "Why nmap holds the host up: user-set (probed without "
            "discovery, and some port replied), syn-ack, conn-refused, echo-reply...",
        ),
        FactDoc("open_ports", "list", "Open TCP ports, sorted."),
        FactDoc("open_port_count", "integer", "Number of open TCP ports."),
        FactDoc(
            "scanned_ports",
            "string",
            "The port list scanned (22,80,8000-8100) or "
            "top-1000 (nmap's 1000 most common TCP ports).",
        ),
        FactDoc(
            "port_counts",
            "object",
            "Scanned ports by final state: open, "
            "closed (the host replied with a reset), filtered (no reply).",
        ),
        FactDoc(
            "scan_type",
            "string",
            "connect (full TCP connect, no privileges needed) or syn (half-open, root only).",
        ),
        FactDoc(
            "service_detection",
            "boolean",
            "True when products and versions were "
            "observed on every open port (nmap -sV ran and finished on each).",
        ),
    ),
)

NET_SERVICE = ResourceTypeDoc(
    name="net.service",
    description="One open TCP port of a host, keyed tcp://ADDRESS:PORT (IPv6 bracketed). "
    "product, version, extrainfo and cpe are unknown (rules reading them end "
    "as error) when service detection was off (sv=0) or did not finish on this port "
    "within the budget; the port itself is still reported.",
    facts=(
        FactDoc("address", "string", "IP address of the host."),
        FactDoc("hostname", "string", "The name the target was given by, or null."),
        FactDoc("port", "integer", "TCP port number."),
        FactDoc("protocol", "string", "Always tcp."),
        FactDoc("state", "string", "Always open (closed and filtered ports are not services)."),
        FactDoc("reason", "string", "How nmap saw the port open (syn-ack)."),
        FactDoc(
            "service",
            "string",
            "nmap's service name: found by probing with "
            "service detection (mysql on any port), else guessed from the port number "
            "(see method); null when nmap has no name.",
        ),
        FactDoc("product", "string", "Product nmap recognised (OpenSSH, MySQL, nginx), or null."),
        FactDoc(
            "version",
            "string",
            "Version as nmap reports it (7.4, 9.6p1 Ubuntu 3ubuntu13, 5.5.62-log), or null.",
        ),
        FactDoc(
            "extrainfo", "string", "nmap's extra information (protocol 2.0, Ubuntu Linux), or null."
        ),
        FactDoc(
            "tunnel",
            "string",
            "ssl when the service is wrapped in TLS (found by "
            "service detection); null otherwise, and always null with sv=0.",
        ),
        FactDoc("cpe", "list", "CPE names of the product (cpe:/a:openbsd:openssh:7.4)."),
        FactDoc("ostype", "string", "Operating system the service banner reveals, or null."),
        FactDoc(
            "method",
            "string",
            "probed (service detection recognised the "
            "service), table (name guessed from the port number), or null.",
        ),
        FactDoc(
            "conf",
            "integer",
            "nmap's confidence in the service name, 0-10 "
            "(10: probed and matched; 3: table guess), or null.",
        ),
        FactDoc(
            "service_detection",
            "boolean",
            "True when product and version were observed (service detection finished "
            "on this port).",
        ),
        FactDoc(
            "ftp_auth_tls",
            "boolean",
            "For an FTP service in clear (service ftp, no ssl tunnel): true when it "
            "accepts AUTH TLS (explicit FTPS, RFC 4217: reply 234), false when it "
            "refuses it; asked by Rempart over one short exchange with the port nmap found "
            "(greeting, AUTH TLS, no login). Unknown (rules reading it end as error) when "
            "the exchange failed or timed out, or with sv=0; null for other services.",
        ),
    ),
)

RESOURCE_TYPES = (NET_HOST, NET_SERVICE)
