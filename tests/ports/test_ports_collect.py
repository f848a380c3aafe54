"""collect() with the real nmap against real loopback listeners."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from audit.models import Observation, Reason
from audit.plugins import CheckContext
from checks.ports import FAMILY
from checks.ports.collect import RunContext, _each_host, _no_hosts
from checks.ports.lab import (
    Lab,
    filtered_port,
    silent_server,
    ssh_banner_server,
)
from checks.ports.runner import ScanRequest
from tests.ports.conftest import by_key, requires_nmap, scan, target

pytestmark = requires_nmap

LAB_SERVICES = ["http", "ssh", "mysql", "redis", "tls", "telnet"]


@pytest.mark.parametrize("name", LAB_SERVICES)
def test_each_lab_service_is_found_with_its_product(
    name: str, lab: Lab, lab_observation: Observation
) -> None:
    # Given the lab scanned once with service detection, each listener is a net.service
    listener = lab.listeners[name]
    resource = by_key(lab_observation)[listener.key]
    facts = resource.facts
    assert resource.type == "net.service" and resource.unknown == {}
    assert (facts["service"], facts["product"], facts["version"], facts["tunnel"]) == (
        listener.service,
        listener.product,
        listener.version,
        listener.tunnel,
    )
    assert facts["port"] == listener.port and facts["address"] == "127.0.0.1"
    assert facts["method"] == "probed" and facts["service_detection"] is True


def test_old_openssh_and_mysql_versions_are_reported(
    lab: Lab, lab_observation: Observation
) -> None:
    resources = by_key(lab_observation)
    ssh = resources[lab.listeners["ssh"].key].facts
    assert (ssh["product"], ssh["version"], ssh["extrainfo"]) == ("OpenSSH", "5.3", "protocol 2.0")
    assert ssh["cpe"] == ["cpe:/a:openbsd:openssh:5.3"]
    assert resources[lab.listeners["mysql"].key].facts["version"] == "5.5.62-log"


def test_the_host_lists_open_ports_and_the_closed_one_is_no_service(
    lab: Lab, lab_observation: Observation
) -> None:
    assert lab_observation.problems == ()
    resources = by_key(lab_observation)
    host = resources["host://127.0.0.1"].facts
    assert host["open_ports"] == sorted(item.port for item in lab.listeners.values())
    assert host["port_counts"] == {"closed": 1, "open": len(lab.listeners)}
    assert host["scanned_ports"] == ",".join(map(str, lab.ports()))
    assert host["service_detection"] is True and host["scan_type"] == "connect"
    assert lab.closed.key not in resources
    assert len(resources) == 1 + len(lab.listeners)


def test_a_quiet_loopback_address_has_no_open_ports(lab: Lab) -> None:
    # 127.0.0.5 exists (all of 127/8 is loopback) but nothing listens: it answers "closed"
    observation = scan(f"ports://127.0.0.5?ports={lab.closed.port}&sv=0")
    assert observation.problems == ()
    (host,) = observation.resources
    assert host.key == "host://127.0.0.5"
    assert host.facts["open_ports"] == [] and host.facts["port_counts"] == {"closed": 1}


def test_a_host_that_never_replies_is_unreachable_not_empty() -> None:
    with filtered_port() as dropped:
        observation = scan(f"ports://127.0.0.1?ports={dropped.port}&sv=0")
    assert observation.resources == ()
    (problem,) = observation.problems
    assert problem.reason is Reason.UNREACHABLE and problem.key is None
    assert "no reply from 127.0.0.1 on any of the 1 scanned ports" in problem.message


def test_sv0_lists_ports_and_marks_versions_unknown(lab: Lab) -> None:
    ssh = lab.listeners["ssh"]
    observation = scan(f"ports://127.0.0.1?ports={ssh.port}&sv=0")
    resource = by_key(observation)[ssh.key]
    assert resource.facts["product"] is None and resource.facts["service_detection"] is False
    assert set(resource.unknown) == {"product", "version", "extrainfo", "cpe"}
    assert resource.unknown["version"].reason is Reason.NOT_IMPLEMENTED
    assert "sv=0" in resource.unknown["version"].message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_syn_scan_runs_as_root(lab: Lab) -> None:
    ssh = lab.listeners["ssh"]
    observation = scan(
        f"ports://127.0.0.1?ports={ssh.port},{lab.closed.port}&sv=0&scan=syn", is_root=True
    )
    host = by_key(observation)["host://127.0.0.1"].facts
    assert host["scan_type"] == "syn" and host["open_ports"] == [ssh.port]


def test_a_network_lists_the_hosts_that_answered(lab: Lab) -> None:
    ssh = lab.listeners["ssh"]
    observation = scan(f"ports://127.0.0.0/30?ports={ssh.port}&sv=0")
    resources = by_key(observation)
    hosts = sorted(k for k, r in resources.items() if r.type == "net.host")
    assert hosts == [f"host://127.0.0.{i}" for i in range(4)]
    assert resources["host://127.0.0.1"].facts["open_ports"] == [ssh.port]
    assert resources["host://127.0.0.2"].facts["reason"] != "user-set"  # discovered
    assert [r.key for r in resources.values() if r.type == "net.service"] == [ssh.key]


def test_a_name_is_scanned_on_the_addresses_the_scope_guard_pinned(lab: Lab) -> None:
    ssh = lab.listeners["ssh"]
    pinned = replace(target(f"ports://localhost?ports={ssh.port}"), addresses=("127.0.0.1",))
    observation = FAMILY.collect(pinned, CheckContext(timeout=30))
    resource = by_key(observation)[ssh.key]
    assert resource.facts["hostname"] == "localhost"
    assert resource.facts["product"] == "OpenSSH"


def test_ipv6_loopback_is_scanned_with_bracketed_keys() -> None:
    with ssh_banner_server("::1", b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n") as ssh:
        observation = scan(f"ports://[::1]?ports={ssh.port}")
    resource = by_key(observation)[f"tcp://[::1]:{ssh.port}"]
    assert resource.facts["address"] == "::1"
    assert (resource.facts["product"], resource.facts["version"]) == (
        "OpenSSH",
        "9.6p1 Ubuntu 3ubuntu13",
    )
    assert by_key(observation)["host://::1"].facts["address_family"] == "ipv6"


def test_service_detection_overrun_keeps_the_open_ports_within_the_budget() -> None:
    # Given a port that accepts and never speaks, service detection cannot finish in 6 s
    with silent_server() as silent:
        started = time.monotonic()
        observation = scan(f"ports://127.0.0.1?ports={silent.port}", timeout=6)
        elapsed = time.monotonic() - started
    # Then the scan ends within its budget, and the port is still reported open,
    # with product and version unknown (timeout) rather than missing or empty
    assert elapsed < 6 + 1.5
    assert observation.problems == ()
    service = by_key(observation)[silent.key]
    assert service.facts["port"] == silent.port
    assert service.unknown["product"].reason is Reason.TIMEOUT
    assert by_key(observation)["host://127.0.0.1"].facts["service_detection"] is False


def test_a_budget_too_small_to_start_nmap_is_a_timeout_problem() -> None:
    with silent_server() as silent:
        started = time.monotonic()
        observation = scan(f"ports://127.0.0.1?ports={silent.port}", timeout=0.5)
        elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 1.0
    assert observation.resources == ()
    (problem,) = observation.problems
    assert problem.reason is Reason.TIMEOUT and problem.key is None
    assert "no time left to scan" in problem.message


@pytest.mark.parametrize(
    ("request_", "errors", "reason", "text"),
    [
        (
            ScanRequest(hosts=("nowhere.example",)),
            ('Failed to resolve "nowhere.example".',),
            Reason.NOT_FOUND,
            "nowhere.example does not resolve",
        ),
        (
            ScanRequest(hosts=("10.9.8.0/24",), discovery=True),
            (),
            Reason.UNREACHABLE,
            "no host in 10.9.8.0/24 answered",
        ),
        (
            ScanRequest(hosts=("192.0.2.1",)),
            ("something odd",),
            Reason.UNREACHABLE,
            "nmap reported no host: something odd",
        ),
    ],
)
def test_a_report_without_hosts_says_why(
    request_: ScanRequest, errors: tuple[str, ...], reason: Reason, text: str
) -> None:
    # (No packet is sent: this reads what nmap said when it found no host.)
    got_reason, message = _no_hosts(request_, errors)
    assert got_reason is reason and text in message


def test_a_failed_run_is_a_problem_per_host_or_one_per_network() -> None:
    run = RunContext(target("ports://localhost"), CheckContext(), "nmap", 0.0, False)
    pair = ScanRequest(hosts=("127.0.0.1", "127.0.0.2"))
    keys = [p.key for p in _each_host(run, pair, Reason.TIMEOUT, "late")]
    assert keys == ["host://127.0.0.1", "host://127.0.0.2"]
    network = ScanRequest(hosts=("127.0.0.0/30",), discovery=True)
    (problem,) = _each_host(run, network, Reason.TIMEOUT, "late")
    assert problem.key is None
