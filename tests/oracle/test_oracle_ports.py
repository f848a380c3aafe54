"""Rempart's ``net.service`` resources against bare nmap on the same loopback services.

Rempart drives nmap too, but through its own plan (a plain port scan, then one ``-sV``
run per open port at a light version intensity, an FTP ``AUTH TLS`` question, time
budgets). The oracle is nmap run once by hand, the way an auditor would, with its
defaults: ``nmap -sT -sV -Pn -p PORTS -oX -``. Whatever Rempart's plan changes, the open
ports and the services named must stay what nmap alone says.

The lab: the fake services of :mod:`checks.ports.lab`, a real pyftpdlib FTP server, the
distribution's nginx serving TLS, and a closed port; seven ports in all.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from checks.ports import lab as ports_lab
from checks.tls import lab as tls_lab
from tests.oracle.servers import NginxServer, TlsConfig, nginx_available

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap not installed"),
]

SERVICES = ("http", "ssh", "mysql", "redis", "tls", "telnet")
SCAN_TIMEOUT_S = 120.0
Service = dict[str, Any]


@dataclass(frozen=True)
class PortsSeen:
    """Both views of the lab, by port."""

    ports: list[int]
    closed: int
    rempart: dict[int, Service]
    nmap: dict[int, Service]


def nmap_services(ports: list[int]) -> dict[int, Service]:
    """Open ports and their services from nmap's own XML (what nmap prints, unfiltered)."""
    xml = subprocess.run(
        ["nmap", "-sT", "-sV", "-Pn", "-p", ",".join(map(str, ports)), "-oX", "-", "127.0.0.1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=SCAN_TIMEOUT_S,
    ).stdout
    found: dict[int, Service] = {}
    for port in ET.fromstring(xml).iter("port"):
        state = port.find("state")
        if state is None or state.get("state") != "open":
            continue
        service = port.find("service")
        attributes = dict(service.attrib) if service is not None else {}
        found[int(port.get("portid", "0"))] = {
            "service": attributes.get("name"),
            "product": attributes.get("product"),
            "version": attributes.get("version"),
            "tunnel": attributes.get("tunnel"),
        }
    return found


def rempart_services(uri: str) -> dict[int, Service]:
    """Rempart's ``net.service`` facts by port, from the family run in process."""
    from urllib.parse import urlsplit

    from audit.plugins import CheckContext
    from checks.ports import FAMILY

    observation = FAMILY.collect(
        FAMILY.parse(urlsplit(uri), uri), CheckContext(timeout=SCAN_TIMEOUT_S)
    )
    assert not observation.problems, observation.problems
    return {
        int(r.facts["port"]): {
            "service": r.facts.get("service"),
            "product": r.facts.get("product"),
            "version": r.facts.get("version"),
            "tunnel": r.facts.get("tunnel"),
        }
        for r in observation.resources
        if r.type == "net.service"
    }


@contextlib.contextmanager
def nginx_https(directory: Path) -> Iterator[int]:
    """The distribution's nginx with TLS, as a real product for nmap to name."""
    issued = tls_lab.Pki(directory).issue(["localhost"])
    with NginxServer(issued, TlsConfig("ports-nginx", "nginx")) as nginx:
        yield nginx.port


@pytest.fixture(scope="module")
def ports_seen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortsSeen]:
    """The lab scanned by Rempart and by bare nmap at the same time."""
    with contextlib.ExitStack() as stack:
        running = stack.enter_context(ports_lab.exposure_lab(names=SERVICES))
        ports = [listener.port for listener in running.listeners.values()]
        ports.append(stack.enter_context(ports_lab.ftp_server()).port)
        if nginx_available():
            ports.append(stack.enter_context(nginx_https(tmp_path_factory.mktemp("nginx"))))
        ports = sorted([*ports, running.closed.port])
        uri = f"ports://127.0.0.1?ports={','.join(map(str, ports))}"
        with ThreadPoolExecutor(2) as pool:
            ours = pool.submit(rempart_services, uri)
            theirs = pool.submit(nmap_services, ports)
            yield PortsSeen(ports, running.closed.port, ours.result(), theirs.result())


def test_open_ports_match_nmap(ports_seen: PortsSeen) -> None:
    # given the same ports scanned by Rempart and by nmap alone
    ours, theirs = sorted(ports_seen.rempart), sorted(ports_seen.nmap)
    # then the same ports are open, and the closed one is in neither list
    assert ours == theirs, f"Rempart says open = {ours} where nmap says {theirs}"
    assert ports_seen.closed not in ours
    assert len(ours) == len(ports_seen.ports) - 1


@pytest.mark.parametrize("fact", ["service", "tunnel", "product", "version"])
def test_service_facts_match_nmap(ports_seen: PortsSeen, fact: str) -> None:
    # given each open port's service as both saw it
    ours = {port: s[fact] for port, s in ports_seen.rempart.items()}
    theirs = {port: ports_seen.nmap.get(port, {}).get(fact) for port in ours}
    # then they name the same thing, port by port
    assert ours == theirs, f"Rempart says {fact} = {ours} where nmap says {theirs}"
