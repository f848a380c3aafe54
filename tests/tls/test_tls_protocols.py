"""Protocols, suites, order, groups and hygiene against real servers, checked with openssl.

The ground truth is OpenSSL itself: ``openssl ciphers -V -s -<proto> SPEC`` lists what an
``openssl s_server -cipher SPEC`` can negotiate; we keep the suites usable with the
server's certificate (RSA or anonymous) and compare with what the raw probes found.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from checks.tls import lab, wire

from .conftest import facts_of

LEGACY_SPEC = "ALL:@SECLEVEL=0"


def expected_suites(spec: str, protocol: str) -> set[str]:
    """Suites an RSA-certificate s_server negotiates for ``spec`` (IANA names)."""
    output = subprocess.run(
        ["openssl", "ciphers", "-V", "-s", f"-{protocol}", spec],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names: set[str] = set()
    for line in output.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        code = int(line.split()[0].replace(",0x", "").replace("0x", ""), 16)
        if fields.get("Au") not in ("RSA", "None", "any") or fields.get("Kx") in (
            "PSK",
            "SRP",
            "ECDHEPSK",
            "DHEPSK",
            "RSAPSK",
        ):
            continue
        if code in (0x1301, 0x1302, 0x1303, 0x1304, 0x1305):
            continue
        names.add(wire.suite_info(code).name)
    return names


@pytest.fixture(scope="module")
def legacy_server(rsa_leaf: lab.Issued) -> Iterator[lab.OpenSslServer]:
    args = ["-min_protocol", "TLSv1", "-cipher", LEGACY_SPEC, "-serverpref"]
    with lab.OpenSslServer(rsa_leaf, args) as server:
        yield server


@pytest.fixture(scope="module")
def legacy_facts(legacy_server: lab.OpenSslServer, pki: lab.Pki) -> dict:
    return facts_of(f"tls://localhost:{legacy_server.port}?http_port=0", pki.ca_file)


def test_legacy_server_protocols_are_what_openssl_was_told(legacy_facts: dict) -> None:
    assert legacy_facts["protocols"] == ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


@pytest.mark.parametrize(
    ("protocol", "flag"), [("TLSv1.0", "tls1"), ("TLSv1.1", "tls1_1"), ("TLSv1.2", "tls1_2")]
)
def test_legacy_server_suites_match_openssl(legacy_facts: dict, protocol: str, flag: str) -> None:
    # given a server configured with ALL:@SECLEVEL=0 and an RSA certificate
    expected = expected_suites(LEGACY_SPEC, flag)
    # then the raw probes found exactly the suites OpenSSL says it can negotiate
    assert set(legacy_facts["cipher_suites"][protocol]) == expected
    assert len(legacy_facts["cipher_suites"][protocol]) == len(expected)


def test_legacy_server_tls13_suites(legacy_facts: dict) -> None:
    assert set(legacy_facts["cipher_suites"]["TLSv1.3"]) == {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    }


def test_legacy_server_derived_facts(legacy_facts: dict) -> None:
    assert legacy_facts["forward_secrecy"] is False  # TLS_RSA_* suites are accepted
    assert legacy_facts["aead_only"] is False
    assert "RSA" in legacy_facts["key_exchanges"]
    assert legacy_facts["server_order"]["TLSv1.2"] is True  # -serverpref
    assert legacy_facts["dh_bits"] == 2048
    assert legacy_facts["secure_renegotiation"] is True
    assert legacy_facts["compression"] is False
    assert legacy_facts["fallback_scsv"] is True
    assert legacy_facts["certificate"]["key_type"] == "RSA"
    assert legacy_facts["certificate"]["chain_trusted"] is True


def test_client_order_is_reported(rsa_leaf: lab.Issued) -> None:
    # given a server that follows the client's order (no -serverpref)
    with lab.OpenSslServer(
        rsa_leaf, ["-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"]
    ) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0")
    # then
    assert facts["server_order"]["TLSv1.2"] is False
    assert facts["cipher_suites"]["TLSv1.2"] and set(facts["cipher_suites"]["TLSv1.2"]) == {
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    }
    assert facts["forward_secrecy"] is True


def test_tls13_only_server_groups_and_certificate(ec_leaf: lab.Issued, pki: lab.Pki) -> None:
    # given a TLS 1.3-only server limited to two groups
    args = ["-tls1_3", "-groups", "X25519:secp384r1", "-ciphersuites", "TLS_AES_256_GCM_SHA384"]
    with lab.OpenSslServer(ec_leaf, args) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0", pki.ca_file)
    # then protocols, suites and groups are exact, and the chain came through Python's ssl
    assert facts["protocols"] == ["TLSv1.3"]
    assert facts["cipher_suites"] == {"TLSv1.3": ["TLS_AES_256_GCM_SHA384"]}
    assert sorted(facts["groups"]) == ["secp384r1", "x25519"]
    assert facts["secure_renegotiation"] is None
    assert facts["certificate"]["chain_trusted"] is True
    assert facts["certificate"]["chain_length"] == 2


def test_tls12_groups_from_server_key_exchange(rsa_leaf: lab.Issued) -> None:
    args = ["-tls1_2", "-groups", "secp521r1:prime256v1", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]
    with lab.OpenSslServer(rsa_leaf, args) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0")
    assert facts["protocols"] == ["TLSv1.2"]
    assert sorted(facts["groups"]) == ["secp256r1", "secp521r1"]
    assert facts["fallback_scsv"] is None  # a single protocol: nothing to fall back to


def test_python_server_defaults(modern_server: lab.PythonTlsServer, pki: lab.Pki) -> None:
    facts = facts_of(f"tls://localhost:{modern_server.port}?http_port=0", pki.ca_file)
    assert facts["protocols"] == ["TLSv1.2", "TLSv1.3"]
    assert facts["forward_secrecy"] is True
    assert "x25519" in facts["groups"]
    assert facts["address"] == "127.0.0.1"
    assert facts["sni"] == "localhost"


def test_ipv6_loopback(ec_leaf: lab.Issued) -> None:
    try:
        server = lab.PythonTlsServer(lab.server_context(ec_leaf), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with server:
        facts = facts_of(f"tls://[::1]:{server.port}?http_port=0&sni=localhost")
    assert facts["address"] == "::1"
    assert facts["protocols"] == ["TLSv1.2", "TLSv1.3"]
    assert facts["certificate"]["hostname_match"] is True


@pytest.mark.parametrize(
    ("args", "tickets_offered", "ids", "tickets"),
    [
        (["-tls1_2"], True, True, True),
        (["-tls1_2", "-no_ticket"], False, True, False),
        (["-tls1_2", "-no_ticket", "-no_cache"], False, False, False),
        (["-tls1_3"], None, None, True),
        (["-tls1_3", "-num_tickets", "0"], None, None, False),
    ],
)
def test_session_resumption(
    rsa_leaf: lab.Issued,
    args: list[str],
    tickets_offered: bool | None,
    ids: bool | None,
    tickets: bool,
) -> None:
    # given s_server with its session cache and tickets switched on or off
    with lab.OpenSslServer(rsa_leaf, args) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0")
    # then each resumption mechanism is reported as the server was told
    assert facts["session_tickets"] is tickets_offered
    assert facts["session_id_resumption"] is ids
    assert facts["session_ticket_resumption"] is tickets
