"""A hostile server gets an error or a bounded observation, never a hang or memory growth."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator

import pytest

from audit.labkit import ThreadedServer
from audit.models import Reason
from audit.plugins import Scope
from checks.web import lab

from .conftest import scan

TIMEOUT = 3.0


@pytest.fixture(scope="module")
def leaf(pki: lab.Pki) -> lab.Issued:
    return pki.issue(("localhost", "127.0.0.1"))


@pytest.fixture
def hostile(request: pytest.FixtureRequest, leaf: lab.Issued) -> Iterator[lab.HostileServer]:
    with lab.HostileServer(lab.server_context(leaf), request.param) as server:
        yield server


@pytest.mark.parametrize(
    ("hostile", "reason", "said"),
    [
        ("huge_headers", Reason.UNDECIDABLE, ""),
        ("many_headers", Reason.UNDECIDABLE, "more than 200 header fields"),
        ("redirects", Reason.UNDECIDABLE, "more than 10 redirects"),
        ("trickle", Reason.TIMEOUT, ""),
    ],
    indirect=["hostile"],
)
def test_a_hostile_server_is_an_error_within_the_timeout(
    hostile: lab.HostileServer, pki: lab.Pki, reason: Reason, said: str
) -> None:
    started = time.monotonic()
    observation = scan(f"https://localhost:{hostile.port}/", pki.ca_file, timeout=TIMEOUT)
    assert time.monotonic() - started < TIMEOUT + 1.5
    assert [p.reason for p in observation.problems] == [reason], observation.problems
    assert said in observation.problems[0].message
    assert not observation.resources


@pytest.mark.parametrize("hostile", ["endless_body"], indirect=True)
def test_an_endless_body_is_read_to_the_bound(hostile: lab.HostileServer, pki: lab.Pki) -> None:
    tracemalloc.start()
    try:
        observation = scan(f"https://localhost:{hostile.port}/", pki.ca_file, timeout=TIMEOUT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (resource,) = observation.resources
    # the page facts are unknown (not read whole), the rest is observed
    assert resource.unknown["third_party_origins"].reason is Reason.UNDECIDABLE
    assert resource.facts["status"] == 200
    assert peak < 16 * 1024 * 1024, peak


class Counting(ThreadedServer):
    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.connections = 0

    def handle(self, connection: object) -> None:
        self.connections += 1


def test_a_redirect_outside_the_declared_scope_sends_nothing(
    web: lab.NginxLab, pki: lab.Pki
) -> None:
    # Given a site that redirects to a listener on 127.0.0.2, and a scope of 127.0.0.1/32
    with Counting("127.0.0.2") as outside:
        web.ports["outside"] = outside.port
        web.sites.append(lab.Site("to-outside", redirect="https://127.0.0.2:{port[outside]}/"))
        try:
            web.reload()
            scope = Scope(networks=("127.0.0.1/32",), domains=("localhost",))
            observation = scan(
                f"https://localhost:{web.port('to-outside')}/", pki.ca_file, scope=scope
            )
        finally:
            web.sites.pop()
            web.reload()
    (resource,) = observation.resources
    # Then the hop is recorded as refused, and no packet reached the listener
    assert "not inside the declared scope" in resource.facts["redirect_refused"]
    assert outside.connections == 0


class Silent(ThreadedServer):
    """Accepts, then never says a word."""

    def handle(self, connection: object) -> None:
        self.stopped.wait(10)


def test_a_silent_plain_http_port_leaves_only_its_fact_unknown(
    web: lab.NginxLab, pki: lab.Pki
) -> None:
    # Given a site whose plain-HTTP port accepts and never answers
    with Silent() as silent:
        started = time.monotonic()
        observation = scan(
            f"https://localhost:{web.port('hardened')}/",
            pki.ca_file,
            timeout=4,
            http_port=silent.port,
        )
    (resource,) = observation.resources
    # Then that fact is unknown (timeout), and security.txt, asked after it, is still read
    assert resource.unknown["http_redirects_to_https"].reason is Reason.TIMEOUT
    assert resource.facts["security_txt"]["present"] is True
    assert time.monotonic() - started < 4
