"""Certificate facts from real servers presenting certificates made for each case."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest

from checks.tls import lab
from checks.tls.certificate import dns_name_matches

from .conftest import facts_of

Make = Callable[[lab.Pki], lab.Issued]


def certificate_of(
    issued: lab.Issued,
    ca_file: str | None,
    *,
    uri_host: str = "localhost",
    ciphers: str | None = None,
) -> dict:
    context = lab.server_context(issued, ciphers=ciphers)
    with lab.PythonTlsServer(context, http=False) as server:
        facts = facts_of(f"tls://{uri_host}:{server.port}?http_port=0", ca_file)
    return facts["certificate"]


CASES: dict[str, tuple[Make, dict]] = {
    "valid": (
        lambda p: p.issue(["localhost"]),
        {
            "chain_trusted": True,
            "hostname_match": True,
            "expired": False,
            "self_signed": False,
            "chain_complete": True,
            "chain_ordered": True,
            "trust_error": None,
        },
    ),
    "expired": (
        lambda p: p.issue(["localhost"], days_valid=(-60, -2)),
        {"expired": True, "chain_trusted": False, "hostname_match": True},
    ),
    "not yet valid": (
        lambda p: p.issue(["localhost"], days_valid=(3, 90)),
        {"not_yet_valid": True, "chain_trusted": False},
    ),
    "expiring soon": (
        lambda p: p.issue(["localhost"], days_valid=(-80, 5)),
        {"expired": False, "chain_trusted": True},
    ),
    "self-signed": (
        lambda p: p.issue(["localhost"], self_signed=True),
        {"self_signed": True, "chain_trusted": False, "hostname_match": True},
    ),
    "hostname mismatch": (
        lambda p: p.issue(["www.example.test"]),
        {"hostname_match": False, "chain_trusted": True},
    ),
    "wildcard": (
        lambda p: p.issue(["*.localhost"]),
        {"hostname_match": False, "chain_trusted": True},
    ),
    "incomplete chain": (
        lambda p: p.issue(["localhost"], send_intermediate=False),
        {"chain_complete": False, "chain_trusted": False, "chain_length": 1},
    ),
    "issued by the root": (
        lambda p: p.issue(["localhost"], issuer="root"),
        {"chain_trusted": True, "chain_length": 1, "chain_complete": True},
    ),
    "must staple": (
        lambda p: p.issue(["localhost"], must_staple=True),
        {"must_staple": True, "sct_count": 0, "ocsp_stapled": False},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_certificate_case(case: str, pki: lab.Pki) -> None:
    make, expected = CASES[case]
    # given a server presenting the case's certificate, and our lab root as trust anchor
    certificate = certificate_of(make(pki), pki.ca_file)
    # then
    for name, value in expected.items():
        assert certificate[name] == value, (name, certificate)


def test_expiring_soon_counts_days(pki: lab.Pki) -> None:
    certificate = certificate_of(pki.issue(["localhost"], days_valid=(-80, 5)), pki.ca_file)
    assert certificate["days_left"] in (4, 5)
    assert certificate["lifetime_days"] == 85


def test_expired_counts_negative_days(pki: lab.Pki) -> None:
    certificate = certificate_of(pki.issue(["localhost"], days_valid=(-60, -2)), pki.ca_file)
    assert certificate["days_left"] < 0


def test_untrusted_root_without_ca_file(pki: lab.Pki) -> None:
    # given the lab root is not in the system store and no --ca-file is passed
    certificate = certificate_of(pki.issue(["localhost"]), None)
    # then the chain is not trusted and the reason says so
    assert certificate["chain_trusted"] is False
    assert certificate["trust_error"]


def test_wildcard_matches_one_label(pki: lab.Pki) -> None:
    # given a wildcard for *.lab.localhost and a target named a.lab.localhost (resolves via sni)
    issued = pki.issue(["*.lab.localhost"])
    with lab.PythonTlsServer(lab.server_context(issued), http=False) as server:
        facts = facts_of(
            f"tls://127.0.0.1:{server.port}?http_port=0&sni=a.lab.localhost", pki.ca_file
        )
    assert facts["certificate"]["hostname_match"] is True
    assert facts["certificate"]["chain_trusted"] is True


def test_rsa_1024_served_at_seclevel_0(pki: lab.Pki) -> None:
    # given OpenSSL would refuse to serve a 1024-bit key at its default level
    issued = pki.issue(["localhost"], key=lab.rsa_key(1024))
    certificate = certificate_of(issued, pki.ca_file, ciphers="DEFAULT:@SECLEVEL=0")
    assert certificate["key_type"] == "RSA"
    assert certificate["key_bits"] == 1024


def test_sha1_signature_is_reported(pki: lab.Pki) -> None:
    # given cryptography refuses SHA-1 signatures, the openssl command makes this one
    issued = lab.openssl_self_signed(pki.directory, digest="sha1")
    certificate = certificate_of(issued, pki.ca_file, ciphers="DEFAULT:@SECLEVEL=0")
    assert certificate["signature_hash"] == "sha1"
    assert certificate["signature_algorithm"] == "sha1WithRSAEncryption"
    assert certificate["self_signed"] is True


def test_ec_key_facts(pki: lab.Pki) -> None:
    certificate = certificate_of(pki.issue(["localhost"]), pki.ca_file)
    assert (certificate["key_type"], certificate["key_bits"], certificate["key_curve"]) == (
        "EC",
        256,
        "secp256r1",
    )
    assert certificate["signature_algorithm"] == "ecdsa-with-SHA256"
    assert certificate["chain"][1]["subject"] == "CN=Rempart Lab Intermediate CA"


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("example.test", "example.test", True),
        ("EXAMPLE.test", "example.TEST.", True),
        ("*.example.test", "www.example.test", True),
        ("*.example.test", "example.test", False),
        ("*.example.test", "a.b.example.test", False),
        ("*.test", "example.test", False),
        ("w*.example.test", "www.example.test", False),
        ("*.*.test", "a.b.test", False),
    ],
)
def test_rfc6125_dns_matching(pattern: str, host: str, expected: bool) -> None:
    assert dns_name_matches(pattern, host) is expected


def test_ssl_module_is_available() -> None:
    assert ssl.OPENSSL_VERSION
