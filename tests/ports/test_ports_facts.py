"""Reading nmap's XML: what proves a host alive, timed-out hosts, TLS tunnels, CPEs.

The documents below have the shape nmap 7.93 writes (``-oX -``); the collect tests run
the real nmap, these pin the cases loopback cannot produce (filtered ports, no XML).
"""

from __future__ import annotations

import pytest

from audit.errors import ObservationError
from audit.models import Problem, Reason
from checks.ports.facts import (
    ScanFacts,
    host_resource,
    parse_report,
    service_key,
    service_resources,
)
from tests.ports.conftest import target

HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n<nmaprun scanner="nmap">'
FOOTER = (
    '<runstats><finished exit="success" elapsed="1.0"/>'
    '<hosts up="1" down="0" total="1"/></runstats></nmaprun>'
)


def document(*hosts: str) -> str:
    return HEADER + "".join(hosts) + FOOTER


def host(
    address: str = "192.0.2.10",
    ports: str = "",
    reason: str = "user-set",
    extra: str = "",
    kind: str = "ipv4",
) -> str:
    return (
        f'<host {extra}><status state="up" reason="{reason}"/>'
        f'<address addr="{address}" addrtype="{kind}"/><hostnames/>'
        f"<ports>{ports}</ports></host>"
    )


FILTERED = '<extraports state="filtered" count="1000"/>'
CLOSED = '<extraports state="closed" count="998"/>'
SSH = (
    '<port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/>'
    '<service name="ssh" product="OpenSSH" version="7.4" extrainfo="protocol 2.0" '
    'method="probed" conf="10"><cpe>cpe:/a:openbsd:openssh:7.4</cpe>'
    "<cpe>cpe:/o:linux:linux_kernel</cpe></service></port>"
)
HTTPS = (
    '<port protocol="tcp" portid="443"><state state="open" reason="syn-ack"/>'
    '<service name="http" product="nginx" tunnel="ssl" method="probed" conf="10"/></port>'
)
SCAN = ScanFacts(scanned_ports="top-1000", scan_type="connect", service_detection=True)


def test_a_host_with_every_port_filtered_did_not_answer() -> None:
    (record,) = parse_report(document(host(ports=FILTERED))).hosts
    assert record.port_counts() == {"filtered": 1000}
    assert not record.answered()


def test_closed_ports_prove_a_host_alive_with_nothing_open() -> None:
    (record,) = parse_report(document(host(ports=CLOSED + FILTERED))).hosts
    assert record.answered()
    assert record.open_ports() == []
    facts = host_resource(record, target("ports://192.0.2.10"), SCAN).facts
    assert facts["open_ports"] == [] and facts["port_counts"] == {"closed": 998, "filtered": 1000}


def test_a_discovered_host_answered_even_when_all_ports_are_filtered() -> None:
    (record,) = parse_report(document(host(ports=FILTERED, reason="echo-reply"))).hosts
    assert record.answered()


def test_timed_out_hosts_are_flagged() -> None:
    (record,) = parse_report(document(host(extra='timedout="true"'))).hosts
    assert record.timed_out and record.ports == ()


def test_service_facts_keep_every_cpe_and_the_tls_tunnel() -> None:
    (record,) = parse_report(document(host(ports=SSH + HTTPS + CLOSED))).hosts
    ssh, https = service_resources(record, target("ports://192.0.2.10"), SCAN)
    assert ssh.key == "tcp://192.0.2.10:22"
    assert ssh.facts["cpe"] == ["cpe:/a:openbsd:openssh:7.4", "cpe:/o:linux:linux_kernel"]
    assert ssh.facts["version"] == "7.4" and ssh.facts["conf"] == 10
    assert https.facts["tunnel"] == "ssl" and https.facts["version"] is None
    assert record.open_ports() == [22, 443]


def test_unobserved_versions_are_unknown_not_empty() -> None:
    (record,) = parse_report(document(host(ports=SSH))).hosts
    problem = Problem(Reason.TIMEOUT, "not observed: service detection overran")
    facts = ScanFacts("22", "connect", False, version_problem=problem)
    (ssh,) = service_resources(record, target("ports://192.0.2.10"), facts)
    assert ssh.facts["product"] is None and ssh.facts["service"] == "ssh"
    assert set(ssh.unknown) == {"product", "version", "extrainfo", "cpe"}
    assert ssh.unknown["version"].reason is Reason.TIMEOUT


def test_ipv6_keys_are_bracketed() -> None:
    (record,) = parse_report(document(host("2001:db8::1", SSH, kind="ipv6"))).hosts
    (ssh,) = service_resources(record, target("ports://[2001:db8::1]"), SCAN)
    assert ssh.key == "tcp://[2001:db8::1]:22" == service_key("2001:db8::1", 22)
    assert host_resource(record, target("ports://[2001:db8::1]"), SCAN).key == "host://2001:db8::1"


def test_an_aborted_run_is_reported_with_nmap_message() -> None:
    xml = (
        HEADER
        + '<runstats><finished exit="error" errormsg="socket troubles"/></runstats>'
        + "</nmaprun>"
    )
    report = parse_report(xml)
    assert report.exit_status == "error" and report.error == "socket troubles"


@pytest.mark.parametrize("xml", ["", "Starting Nmap", "<html/>", HEADER])
def test_output_that_is_not_a_report_is_a_bug(xml: str) -> None:
    with pytest.raises(ObservationError) as failed:
        parse_report(xml)
    assert failed.value.reason is Reason.BUG
