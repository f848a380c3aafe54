"""A server that stops answering never gets a pass on what it was not asked.

The attack: a server that accepts RC4 and 3DES sits behind a rate limiter or an IPS
that lets its first few handshakes through and then resets, closes, stays silent or
answers with a block page. An enumeration that read those as "no more suites" would
report the strong suites it saw first and pass TLS-SUITE-001/-002. These tests run
that server (:class:`lab.ThrottledHelloServer`, a real socket server) and check that
every fact the probes could not finish is unknown, its rules ``error``; and that a
limiter that refills gets the retries it needs to give the full, correct answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from audit.evaluate import BoundRule, evaluate_rule
from audit.models import Reason, Resource
from audit.policy import load_policy
from checks.tls import lab, probe, wire
from checks.tls.collect import CUT_FACTS, SUITE_FACTS
from checks.tls.enumerate import (
    Chain,
    compression,
    dh_bits,
    eliminate_groups,
    eliminate_suites,
    fallback_scsv,
    heartbleed,
    server_order,
)
from checks.tls.probe import Endpoint, Outcome, Patience, Prober

from .conftest import scan

RC4, DES3 = 0x0005, 0x000A
SUITES = (0xC02F, 0xC030, RC4, DES3)
"""Two strong ECDHE suites, then RC4 and 3DES."""
VERSIONS = (0x0302, 0x0303)
QUICK = Patience(first_delay=0.02, give_up=0.3)
"""Short rests, for the tests that only need to see a retry happen."""
REFILL = Patience(first_delay=0.1, give_up=1.0)
"""Rests that add up to more than the test limiter's window (0.3 s)."""
ENUMERATED = tuple(sorted({name for names in CUT_FACTS.values() for name in names}))
POLICY = load_policy(Path(__file__).parents[2] / "policies" / "anssi-tls.yaml")


@pytest.fixture(scope="module")
def rsa_der(rsa_leaf: lab.Issued) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    der: bytes = rsa_leaf.cert.public_bytes(Encoding.DER)
    return der


def throttled(
    der: bytes, answers: int, window: float | None = None, then: str = "reset"
) -> lab.ThrottledHelloServer:
    return lab.ThrottledHelloServer(
        der, lab.Throttle(answers, window), then=then, versions=VERSIONS, suites=SUITES
    )


def on_loop(
    port: int,
    work: Callable[[Prober], Coroutine[Any, Any, Any]],
    patience: Patience = QUICK,
    timeout: float = 0.5,
    budget: float | None = None,
) -> tuple[Any, Prober]:
    """Run ``work`` with a prober of 127.0.0.1:``port`` on the probe loop."""

    async def run() -> tuple[Any, Prober]:
        import asyncio

        deadline = None if budget is None else asyncio.get_running_loop().time() + budget
        prober = Prober(Endpoint(lab.LOOPBACK, port), timeout, patience=patience, deadline=deadline)
        return await work(prober), prober

    result: tuple[Any, Prober] = probe.run(run(), 60)
    return result


def suites_of(prober: Prober) -> Coroutine[Any, Any, tuple[Chain, bool]]:
    return eliminate_suites(prober, "TLSv1.2")


def rule_statuses(resource: Resource, *ids: str) -> dict[str, str]:
    rules = {rule.id: rule for rule in POLICY.rules}
    return {i: str(evaluate_rule(BoundRule(rules[i], POLICY.params), resource).status) for i in ids}


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("then", "failure"),
    [("reset", "reset"), ("close", "closed"), ("garbage", "not_tls"), ("silence", "timeout")],
)
def test_no_verdict_mid_elimination_cuts_the_chain(rsa_der: bytes, then: str, failure: str) -> None:
    # given a server that answers two handshakes, then drops every connection its way
    with throttled(rsa_der, answers=2, then=then) as server:
        # when the TLS 1.2 suites are eliminated
        (chain, _), prober = on_loop(server.port, suites_of, timeout=0.3)
    # then the list is cut by that failure, after retries, and is not taken as complete
    assert chain.cut is not None and chain.cut.failure == failure
    assert "attempt(s)" in chain.cut.message
    assert len(chain.found) < len(SUITES)
    assert prober.retries >= 1


def test_a_clean_alert_ends_the_elimination_without_retry(rsa_der: bytes) -> None:
    # given a server that answers every handshake, refusing with an alert what it lacks
    with throttled(rsa_der, answers=10**6) as server:
        (chain, client_like), prober = on_loop(server.port, suites_of)
    # then every suite is found, each chain ended on one alert, nothing was retried
    assert chain.cut is None
    assert sorted(chain.found) == sorted(SUITES)
    chains = len([c for c in range(6) if wire.suites_for("TLSv1.2")[c::6]])
    assert prober.count == len(SUITES) + chains
    assert prober.retries == 0
    assert client_like


def test_a_limiter_that_refills_gets_the_full_list(rsa_der: bytes) -> None:
    # given a rate limiter: two handshakes per 0.3 s window, resets beyond that
    with throttled(rsa_der, answers=2, window=0.3) as server:
        (chain, _), prober = on_loop(server.port, suites_of, patience=REFILL)
        turned_away = server.throttle.turned_away
    # then the rests let the window refill: the list is complete, and was fought for
    assert chain.cut is None
    assert sorted(chain.found) == sorted(SUITES)
    assert turned_away > 0 and prober.retries > 0


def test_patience_ends_at_the_deadline(rsa_der: bytes) -> None:
    # given a server gone for good after two handshakes, and half a second to spare
    with throttled(rsa_der, answers=2) as server:
        started = time.monotonic()
        (chain, _), _prober = on_loop(
            server.port, suites_of, patience=probe.PATIENCE, timeout=0.2, budget=0.5
        )
        elapsed = time.monotonic() - started
    # then it gives up within the budget (the patience alone would rest 2 s), cut
    assert chain.cut is not None
    assert elapsed < 1.5


HYGIENE: dict[str, Callable[[Prober], Coroutine[Any, Any, Any]]] = {
    "server_order": lambda p: server_order(p, "TLSv1.2", [0xC02F, RC4], True),
    "dh_bits": lambda p: dh_bits(p, "TLSv1.2", (0x009E, 0x009F)),
    "compression": lambda p: compression(p, "TLSv1.2"),
    "fallback_scsv": lambda p: fallback_scsv(p, ["TLSv1.1", "TLSv1.2"]),
    "heartbleed": lambda p: heartbleed(p, "TLSv1.2"),
}


@pytest.mark.parametrize("fact", sorted(HYGIENE))
def test_each_single_probe_fact_reports_no_verdict(rsa_der: bytes, fact: str) -> None:
    # given a server that resets every connection
    with throttled(rsa_der, answers=0) as server:
        answer, prober = on_loop(server.port, HYGIENE[fact])
    # then the probe's answer is the failure itself, never a value
    assert isinstance(answer, Outcome) and answer.failure == "reset"
    assert prober.retries >= 1


def test_group_elimination_reports_no_verdict(rsa_der: bytes) -> None:
    with throttled(rsa_der, answers=0, then="garbage") as server:
        chain, _ = on_loop(server.port, lambda p: eliminate_groups(p, "TLSv1.3", (0x1301,)))
    assert chain.cut is not None and chain.cut.failure == "not_tls"
    assert chain.found == []


# --------------------------------------------------------------------------- whole scans


@pytest.mark.parametrize(("answers", "then"), [(8, "reset"), (12, "garbage")])
def test_server_that_stops_answering_gets_no_pass(rsa_der: bytes, answers: int, then: str) -> None:
    # given a server with RC4 and 3DES that answers only its first few handshakes
    with throttled(rsa_der, answers=answers, then=then) as server:
        observation = scan(f"tls://localhost:{server.port}?http_port=0", timeout=6.0)
    # then the endpoint is observed, its protocols are known...
    (resource,) = observation.resources
    assert resource.facts["protocols"] == ["TLSv1.1", "TLSv1.2"]
    # ...but its suites and everything read off them are unknown, with the reason
    for name in SUITE_FACTS:
        assert name in resource.unknown and name not in resource.facts, name
    problem = resource.unknown["cipher_suites"]
    assert problem.reason is Reason.UNREACHABLE and "no TLS verdict" in problem.message
    # and the suite rules are errors, never a pass
    assert set(rule_statuses(resource, "TLS-SUITE-001", "TLS-SUITE-002").values()) == {"error"}


def test_every_enumerated_fact_is_unknown_when_only_the_first_probes_answer(
    rsa_der: bytes,
) -> None:
    # given a server that answers the six protocol probes and nothing after them
    with throttled(rsa_der, answers=6) as server:
        observation = scan(f"tls://localhost:{server.port}?http_port=0", timeout=6.0)
    (resource,) = observation.resources
    # then each enumerated fact is unknown on its own account (groups, DH, hygiene...)
    assert set(ENUMERATED) <= set(resource.unknown)
    assert "heartbeat probe" in resource.unknown["heartbleed"].message
    assert "compression probe" in resource.unknown["compression"].message
    # what the protocol probes themselves saw stays known
    assert resource.facts["secure_renegotiation"] is True


def test_silence_is_unknown_within_the_timeout(rsa_der: bytes) -> None:
    # given a server that goes silent (an IPS dropping packets) after eight handshakes
    with throttled(rsa_der, answers=8, then="silence") as server:
        started = time.monotonic()
        observation = scan(f"tls://localhost:{server.port}?http_port=0", timeout=4.0)
        elapsed = time.monotonic() - started
    # then the observation still arrives in time, the suites unknown as timeouts
    (resource,) = observation.resources
    assert resource.unknown["cipher_suites"].reason is Reason.TIMEOUT
    assert elapsed < 4.5


def test_a_rate_limited_server_is_fully_enumerated(rsa_der: bytes) -> None:
    # given the same server behind a limiter of 8 handshakes per half second
    with throttled(rsa_der, answers=8, window=0.5) as server:
        observation = scan(f"tls://localhost:{server.port}?http_port=0", timeout=15.0)
        turned_away = server.throttle.turned_away
    (resource,) = observation.resources
    facts = resource.facts
    # then the limiter did turn probes away, and the retries still found everything
    assert turned_away > 0
    assert not set(ENUMERATED) & set(resource.unknown), resource.unknown
    legacy = sorted(wire.names((RC4, DES3)))  # the GCM suites are TLS 1.2's only
    assert {p: sorted(names) for p, names in facts["cipher_suites"].items()} == {
        "TLSv1.1": legacy,
        "TLSv1.2": sorted(wire.names(SUITES)),
    }
    assert facts["weakest_suite"] in ("TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA")
    assert facts["server_order"] == {"TLSv1.1": False, "TLSv1.2": False}
    assert facts["compression"] is False and facts["heartbleed"] is False
    # and the suite rules fail, as they must for RC4, 3DES and static RSA
    statuses = rule_statuses(resource, "TLS-SUITE-001", "TLS-SUITE-002")
    assert statuses == {"TLS-SUITE-001": "fail", "TLS-SUITE-002": "fail"}
