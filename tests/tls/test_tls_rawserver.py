"""Positive detection of what no local library will serve: SSLv2, SSLv3, Heartbleed.

OpenSSL 3 and Python's ``ssl`` have neither SSLv2/SSLv3 nor heartbeats, so these run
against :class:`lab.RawHelloServer`, a first-flight-only server written from the RFCs;
the negative cases are also checked against the real ``openssl s_server``.
"""

from __future__ import annotations

import pytest

from checks.tls import lab

from .conftest import facts_of


@pytest.fixture(scope="module")
def rsa_der(rsa_leaf: lab.Issued) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    der: bytes = rsa_leaf.cert.public_bytes(Encoding.DER)
    return der


def test_sslv3_only_server_is_seen(rsa_der: bytes) -> None:
    # given a server that speaks SSLv3 only, with two RSA suites
    with lab.RawHelloServer(rsa_der, versions=(0x0300,), suites=(0x000A, 0x002F)) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0")
    # then SSLv3 is the one protocol, its suites are enumerated from the raw probes,
    # and the certificate comes from the clear-text Certificate message
    assert facts["protocols"] == ["SSLv3"]
    assert sorted(facts["cipher_suites"]["SSLv3"]) == [
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
    ]
    assert facts["forward_secrecy"] is False
    assert facts["heartbeat"] is False and facts["heartbleed"] is False  # no extensions in SSLv3
    assert facts["certificate"]["key_type"] == "RSA"


def test_sslv2_server_is_seen(rsa_der: bytes) -> None:
    with lab.RawHelloServer(rsa_der, versions=(0x0300,), sslv2=True) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0")
    assert facts["protocols"] == ["SSLv2", "SSLv3"]
    assert facts["cipher_suites"]["SSLv2"] == []


@pytest.mark.parametrize(("bleed", "expected"), [(True, True), (False, False)])
def test_heartbleed(rsa_der: bytes, bleed: bool, expected: bool) -> None:
    # given a TLS 1.0-1.2 server that acknowledges heartbeats, bleeding or not
    with lab.RawHelloServer(
        rsa_der, versions=(0x0301, 0x0302, 0x0303), heartbeat=True, bleed=bleed
    ) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0")
    assert facts["protocols"] == ["TLSv1.0", "TLSv1.1", "TLSv1.2"]
    assert facts["heartbeat"] is True
    assert facts["heartbleed"] is expected


def test_modern_openssl_has_no_heartbeat(rsa_leaf: lab.Issued) -> None:
    with lab.OpenSslServer(rsa_leaf, ["-tls1_2"]) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0")
    assert facts["heartbeat"] is False and facts["heartbleed"] is False


def test_tls13_only_has_no_heartbeat_fact(ec_leaf: lab.Issued) -> None:
    with lab.OpenSslServer(ec_leaf, ["-tls1_3"]) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0")
    assert facts["heartbeat"] is None and facts["heartbleed"] is None
