"""Rempart's TLS observations against sslyze, Python's ``ssl`` and ``openssl x509``.

Every configuration of :data:`tests.oracle.servers.CONFIGS` is served for real (openssl
s_server, nginx, Python's ``ssl``) and every fact below is compared with at least one
independent implementation. A disagreement is either a failing test, an ``xfail`` naming
a confirmed Rempart defect (strict: the day it is fixed, the mark must go), or a
difference of definition written in ``docs/differences.md`` and applied here by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.oracle.conftest import Seen, TlsLab
from tests.oracle.servers import CONFIGS, TlsConfig

pytestmark = pytest.mark.oracle

NOT_TESTED_BY_SSLYZE = frozenset(
    {"TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256", "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256"}
)
"""Suites absent from sslyze's list, so only Rempart can see them (docs/differences.md)."""

SSLYZE_BLIND: dict[tuple[str, str], str] = {
    ("openssl-ed25519", "TLSv1.2"): "TLS_ECDHE_ECDSA_",
}
"""(configuration, protocol) → prefix of the suites sslyze cannot see there: it tests most
TLS 1.2 suites with its legacy OpenSSL 1.0.2 build, which has no Ed25519, so the server
refuses it every ECDSA suite (docs/differences.md). There, sslyze's set must be included
in Rempart's, and the rest must all carry the prefix."""

KNOWN_DEFECTS: dict[tuple[str, str], str] = {}
"""(configuration, comparison) → the Rempart defect that makes them disagree."""


def cases(comparison: str, keep: Callable[[TlsConfig], bool] = lambda _: True) -> list[Any]:
    """The configurations a comparison runs on, a known defect marked strict xfail."""
    params = []
    for config in CONFIGS:
        if not keep(config):
            continue
        reason = KNOWN_DEFECTS.get((config.name, comparison))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(config, id=config.name, marks=marks))
    return params


def says(fact: str, ours: object, tool: str, theirs: object) -> str:
    """The assertion message, in the words of docs/differences.md."""
    return f"Rempart says {fact} = {ours!r} where {tool} says {theirs!r}"


# --------------------------------------------------------------------------- protocols


@pytest.mark.parametrize("config", cases("protocols-sslyze"))
def test_protocols_match_sslyze(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given a real server, seen by Rempart's raw probes and by sslyze
    seen = tls_lab.seen(config)
    # then both list the same accepted versions
    ours, theirs = seen.facts["protocols"], seen.sslyze.protocols
    assert ours == theirs, says("protocols", ours, "sslyze", theirs)


@pytest.mark.parametrize("config", cases("protocols-python"))
def test_protocols_match_python_handshakes(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given one full handshake by Python's ssl at each version the local OpenSSL speaks
    seen = tls_lab.seen(config)
    judged = {v: ok for v, ok in seen.python_protocols.items() if ok is not None}
    # then Rempart accepts a version exactly when that handshake completes
    ours = {v: v in seen.facts["protocols"] for v in judged}
    assert ours == judged, says("protocols", ours, "Python's ssl", judged)


@pytest.mark.parametrize("config", cases("suites-sslyze"))
def test_suites_per_protocol_match_sslyze(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given the suites each tool found accepted, per protocol
    seen = tls_lab.seen(config)
    ours = {
        protocol: set(suites) - NOT_TESTED_BY_SSLYZE
        for protocol, suites in seen.facts["cipher_suites"].items()
        if protocol in seen.facts["protocols"]
    }
    theirs = seen.sslyze.suites
    # then they are the same sets, protocol by protocol
    for protocol in sorted(set(ours) | set(theirs)):
        mine, other = ours.get(protocol, set()), theirs.get(protocol, set())
        blind = SSLYZE_BLIND.get((config.name, protocol))
        if blind:
            assert other <= mine, says("suites", sorted(mine), "sslyze", sorted(other))
            assert all(name.startswith(blind) for name in mine - other), sorted(mine - other)
            continue
        assert mine == other, f"{protocol}: " + says(
            "only-ours", sorted(mine - other), "sslyze", sorted(other - mine)
        )


# --------------------------------------------------------------------------- certificate


@pytest.mark.parametrize("config", cases("trust-sslyze"))
def test_trust_for_the_name_matches_sslyze(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given sslyze's path validation against the lab CA, which also checks the name asked
    seen = tls_lab.seen(config)
    certificate = seen.certificate
    ours = certificate["chain_trusted"] is True and certificate["hostname_match"] is True
    # then Rempart's trust and name match together give the same verdict
    theirs = seen.sslyze.trusted_for_name
    assert ours == theirs, says(
        "chain_trusted and hostname_match",
        (certificate["chain_trusted"], certificate["hostname_match"], certificate["trust_error"]),
        "sslyze",
        (theirs, seen.sslyze.validation_error),
    )


@pytest.mark.parametrize("config", cases("trust-openssl"))
def test_chain_trusted_matches_openssl(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given OpenSSL's own path building (Python's ssl, the lab CA only, the name not checked)
    seen = tls_lab.seen(config)
    ours, (theirs, error) = seen.certificate["chain_trusted"], seen.python_trust
    # then Rempart trusts the chain exactly when OpenSSL does
    assert ours == theirs, says(
        "chain_trusted", (ours, seen.certificate["trust_error"]), "OpenSSL", (theirs, error)
    )


@pytest.mark.parametrize("config", cases("complete-openssl"))
def test_chain_complete_matches_openssl(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given OpenSSL building a path from the served certificates alone, dates not judged
    seen = tls_lab.seen(config)
    ours, theirs = seen.certificate["chain_complete"], seen.python_complete
    # then Rempart calls the chain complete exactly when that path exists
    assert ours == theirs, says("chain_complete", ours, "OpenSSL", theirs)


@pytest.mark.parametrize("config", cases("hostname-openssl"))
def test_hostname_match_matches_openssl(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given openssl x509 -checkhost (or -checkip) on the leaf the server sent
    seen = tls_lab.seen(config)
    ours, theirs = seen.certificate["hostname_match"], seen.openssl_hostname
    # then Rempart's RFC 6125 match agrees
    assert ours == theirs, says("hostname_match", ours, "openssl x509", theirs)


@pytest.mark.parametrize("config", cases("key-sslyze"))
def test_key_facts_match_sslyze(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given the leaf's public key as sslyze parsed it
    seen = tls_lab.seen(config)
    ours = (seen.certificate["key_type"], seen.certificate["key_bits"])
    theirs = (seen.sslyze.key_type, seen.sslyze.key_bits)
    if theirs[1] is None:  # EdDSA: sslyze gives no size, Rempart the curve's (docs/differences.md)
        assert ours == (theirs[0], {"Ed25519": 256, "Ed448": 456}[theirs[0]])
        return
    # then the key type and size are the same
    assert ours == theirs, says("(key_type, key_bits)", ours, "sslyze", theirs)


@pytest.mark.parametrize("config", cases("chain-sslyze"))
def test_served_chain_matches_sslyze(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given the chain sslyze received
    seen = tls_lab.seen(config)
    certificate = seen.certificate
    ours = (
        certificate["fingerprint_sha256"],
        certificate["chain_length"],
        certificate["chain_ordered"],
    )
    theirs = (
        seen.sslyze.fingerprint_sha256,
        len(seen.sslyze.chain_pem),
        seen.sslyze.chain_ordered,
    )
    # then it is the same leaf, as many certificates, and the same verdict on their order
    assert ours == theirs, says(
        "(leaf sha256, chain_length, chain_ordered)", ours, "sslyze", theirs
    )


@pytest.mark.parametrize("config", cases("hsts-sslyze", lambda c: c.server != "openssl"))
def test_hsts_matches_sslyze(config: TlsConfig, tls_lab: TlsLab) -> None:
    # given a web server (nginx, Python) that sends Strict-Transport-Security
    seen: Seen = tls_lab.seen(config)
    ours, theirs = seen.facts["hsts"], seen.sslyze.hsts
    # then Rempart reads the header as sslyze does
    assert theirs is not None, "sslyze did not read the HTTP headers"
    assert ours is not None, says("hsts", ours, "sslyze", theirs)
    assert {k: ours.get(k) for k in theirs} == theirs, says("hsts", ours, "sslyze", theirs)
