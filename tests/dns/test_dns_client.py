"""The shared DNS client against a real NSD on loopback: answers, absence and silence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from fakes import SilentUdp

from audit.labkit import closed_port
from audit.plugins import CheckContext
from checks.dns.client import Answer, DnsClient, parse_server, resolvers_from
from checks.dns.lab import NsdServer, Zone, zone_text

pytestmark = pytest.mark.skipif(
    __import__("shutil").which("nsd") is None, reason="nsd is not installed"
)

RECORDS = [
    '@ IN TXT "v=spf1 " "-all"',
    "@ IN MX 10 mx.client.test.",
    "mx IN A 127.0.0.1",
    *[f'big IN TXT "{i:03d}{"x" * 200}"' for i in range(12)],
]


@pytest.fixture(scope="module")
def nsd() -> Iterator[NsdServer]:
    zones = [
        Zone(
            "client.test",
            zone_text("client.test", RECORDS, ns={"ns1.client.test.": "127.0.0.1"}),
            transfer=True,
        ),
        Zone("closed.test", zone_text("closed.test", [], ns={"ns1.closed.test.": "127.0.0.1"})),
    ]
    with NsdServer(zones, addresses=("127.0.0.1",)) as server:
        yield server


def ask(client: DnsClient, name: str, rdtype: str) -> Answer:
    return asyncio.run(client.query(name, rdtype))


def test_answers_nxdomain_and_nodata(nsd: NsdServer) -> None:
    client = DnsClient([("127.0.0.1", nsd.port)], 2.0)
    txt = ask(client, "Client.Test.", "TXT")
    assert (txt.name, txt.rcode, txt.records, txt.known, txt.exists) == (
        "client.test",
        "NOERROR",
        ("v=spf1 -all",),
        True,
        True,
    )
    assert ask(client, "client.test", "MX").records == ("10 mx.client.test.",)
    nx = ask(client, "nowhere.client.test", "A")
    assert (nx.rcode, nx.known, nx.exists) == ("NXDOMAIN", True, False)
    nodata = ask(client, "mx.client.test", "TXT")
    assert (nodata.rcode, nodata.records, nodata.exists) == ("NOERROR", (), True)
    assert "DO" not in nodata.flags and "QR" in nodata.flags


def test_truncated_answers_are_asked_again_over_tcp(nsd: NsdServer) -> None:
    big = ask(DnsClient([("127.0.0.1", nsd.port)], 2.0), "big.client.test", "TXT")
    assert len(big.records) == 12 and big.known


def test_zone_transfer_allowed_and_refused(nsd: NsdServer) -> None:
    client = DnsClient(None, 2.0)
    server = ("127.0.0.1", nsd.port)
    open_ = asyncio.run(client.query_at(server, "client.test", "AXFR"))
    assert open_.rcode == "NOERROR" and any("MX" in r for r in open_.records)
    refused = asyncio.run(client.query_at(server, "closed.test", "AXFR"))
    assert refused.known and refused.rcode in {"REFUSED", "NOTAUTH"} and not refused.records


def test_silence_is_unknown_with_its_reason() -> None:
    with SilentUdp() as silent:
        answer = ask(DnsClient([("127.0.0.1", silent.port)], 0.3), "client.test", "TXT")
    assert not answer.known and not answer.exists and answer.rcode is None
    assert answer.error == f"timeout after 0.3 s from 127.0.0.1:{silent.port}"


def test_a_silent_server_is_asked_again_then_given_up_at_the_deadline() -> None:
    """One timer per question sends it again after 1 s (a lost datagram) and fails it
    at its deadline, not later: the same question twice, then a timeout at 1.5 s."""
    with SilentUdp() as silent:
        started = time.monotonic()
        answer = ask(DnsClient([("127.0.0.1", silent.port)], 1.5), "client.test", "TXT")
        took = time.monotonic() - started
        silent.sock.setblocking(False)
        copies = []
        while True:
            try:
                copies.append(silent.sock.recv(4096))
            except BlockingIOError:
                break
    assert answer.error == f"timeout after 1.5 s from 127.0.0.1:{silent.port}"
    assert 1.5 <= took < 2.2
    assert len(copies) == 2 and copies[0] == copies[1]


def test_a_closed_port_is_unknown_without_waiting_for_the_timeout() -> None:
    port = closed_port()
    answer = ask(DnsClient([("127.0.0.1", port)], 5.0), "client.test", "TXT")
    # the ICMP port unreachable is the reason, given at once (not after 5 s)
    assert not answer.known and answer.rcode is None and answer.error is not None
    assert f"127.0.0.1:{port}" in answer.error and "refused" in answer.error


def test_next_resolver_answers_when_the_first_is_silent(nsd: NsdServer) -> None:
    client = DnsClient([("127.0.0.1", closed_port()), ("127.0.0.1", nsd.port)], 0.3)
    assert ask(client, "client.test", "TXT").records == ("v=spf1 -all",)


def test_resolver_settings() -> None:
    assert parse_server("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:53") == ("::1", 53)
    assert parse_server("::1") == ("::1", 53)
    for bad in ("ns.example", "127.0.0.1:0", "[::1"):
        with pytest.raises(ValueError):
            parse_server(bad)
    ctx = CheckContext(options={"dns": {"resolvers": ["127.0.0.1:5300", ("::1", 53)]}})
    assert resolvers_from(ctx) == (("127.0.0.1", 5300), ("::1", 53))
    assert resolvers_from(CheckContext()) is None
