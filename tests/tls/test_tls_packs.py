"""The TLS packs judge what their sources say: each case is one defect they once had.

Certificates are real (made by the lab, or by the openssl command for SHA-1); the
facts are those ``certificate_facts`` reads off them, judged by the shipped rules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from audit.models import Resource, Status
from audit.policy import Reference, load_policy
from audit.registry import load_families
from checks.tls import lab
from checks.tls.certificate import certificate_facts

from .conftest import POLICIES, verdict

TLS_PACKS = ("anssi-tls", "certificates", "mozilla-intermediate", "mozilla-modern", "web-tls")


def endpoint(**facts: Any) -> Resource:
    return Resource("tls.endpoint", "tls://lab:443", "tls://lab:443", "adhoc", facts)


def with_certificate(chain: list[Any]) -> Resource:
    from cryptography.hazmat.primitives.serialization import Encoding

    der = [cert.public_bytes(Encoding.DER) for cert in chain]
    return endpoint(certificate=certificate_facts(der, "localhost", None))


# --------------------------------------------------------------------------- signatures


def _ed25519_leaf_signed_with_sha1(directory: Path) -> Any:
    """An Ed25519 leaf signed by an RSA CA with SHA-1 (the openssl command still signs it)."""
    from cryptography import x509

    ca = lab.openssl_self_signed(directory, name="Lab SHA1 CA", digest="sha256")
    key, csr, cert = (str(directory / f"ed-leaf.{ext}") for ext in ("key", "csr", "pem"))
    sign = ["-CA", ca.cert_file, "-CAkey", ca.key_file, "-CAcreateserial", "-sha1", "-days", "30"]
    for command in (
        ["genpkey", "-algorithm", "ed25519", "-out", key],
        ["req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr],
        ["x509", "-req", "-in", csr, *sign, "-out", cert],
    ):
        subprocess.run(["openssl", *command], check=True, capture_output=True)
    return x509.load_pem_x509_certificate(Path(cert).read_bytes()), ca.cert


@pytest.mark.parametrize(
    ("pack", "rule"), [("anssi-tls", "TLS-SIG-001"), ("certificates", "CERT-SIG-001")]
)
def test_an_ed25519_leaf_signed_with_sha1_fails(pack: str, rule: str, tmp_path: Path) -> None:
    # given an Ed25519 key, certified by an RSA CA with a SHA-1 signature
    leaf, ca = _ed25519_leaf_signed_with_sha1(tmp_path)
    resource = with_certificate([leaf, ca])
    assert resource.facts["certificate"]["key_type"] == "Ed25519"
    # then the signature, not the key, is judged
    assert verdict(pack, rule, resource).status is Status.FAIL


@pytest.mark.parametrize(
    ("pack", "rule"), [("anssi-tls", "TLS-SIG-001"), ("certificates", "CERT-SIG-001")]
)
def test_an_ec_leaf_signed_by_an_ed25519_ca_passes(pack: str, rule: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    # given an EC leaf from an intermediate CA whose key is Ed25519
    pki = lab.Pki(tmp_path, issuing_key=ed25519.Ed25519PrivateKey.generate())
    resource = with_certificate([pki.issue(["localhost"]).cert, pki.intermediate])
    assert resource.facts["certificate"]["signature_algorithm"] == "ed25519"
    # then EdDSA is a sound signature
    assert verdict(pack, rule, resource).status is Status.PASS


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("pack", "rule"), [("anssi-tls", "TLS-KEY-002"), ("certificates", "CERT-KEY-002")]
)
@pytest.mark.parametrize(
    ("curve", "expected"), [("SECP256K1", Status.FAIL), ("SECP384R1", Status.PASS)]
)
def test_certificate_curves_are_judged_not_only_their_size(
    pack: str, rule: str, curve: str, expected: Status, pki: lab.Pki
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(getattr(ec, curve)())
    resource = with_certificate([pki.issue(["localhost"], key=key).cert, pki.intermediate])
    assert verdict(pack, rule, resource).status is expected


# --------------------------------------------------------------------------- ANSSI annex A


@pytest.mark.parametrize(
    ("suite", "expected"),
    [
        ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", Status.PASS),
        ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", Status.PASS),
        ("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", Status.PASS),
        ("TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384", Status.FAIL),
        ("TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384", Status.FAIL),
        ("TLS_RSA_WITH_SEED_CBC_SHA", Status.FAIL),
        ("TLS_RSA_WITH_AES_128_GCM_SHA256", Status.FAIL),
    ],
)
def test_suites_outside_annex_a_fail(suite: str, expected: Status) -> None:
    resource = endpoint(cipher_suites={"TLSv1.2": [suite], "TLSv1.3": ["TLS_AES_128_GCM_SHA256"]})
    assert verdict("anssi-tls", "TLS-SUITE-002", resource).status is expected


@pytest.mark.parametrize("hybrid", ["X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024"])
def test_every_probed_pq_hybrid_is_judged_alike(hybrid: str) -> None:
    resource = endpoint(groups=["x25519", hybrid])
    assert verdict("anssi-tls", "TLS-GROUP-001", resource).status is Status.PASS


# --------------------------------------------------------------------------- facts judged


@pytest.mark.parametrize(
    ("pack", "rule", "facts", "expected"),
    [
        ("anssi-tls", "TLS-VULN-001", {"heartbleed": True}, Status.FAIL),
        ("anssi-tls", "TLS-VULN-001", {"heartbleed": False}, Status.PASS),
        ("anssi-tls", "TLS-VULN-001", {"heartbleed": None}, Status.SKIP),
        ("anssi-tls", "TLS-EMS-001", {"extended_master_secret": False}, Status.FAIL),
        ("anssi-tls", "TLS-FALLBACK-001", {"fallback_scsv": False}, Status.FAIL),
        ("mozilla-intermediate", "TLS-MOZINT-010", {"ocsp_stapled": False}, Status.FAIL),
        ("mozilla-modern", "TLS-MOZMOD-008", {"ocsp_stapled": True}, Status.PASS),
        (
            "mozilla-intermediate",
            "TLS-MOZINT-011",
            {"server_order": {"TLSv1.2": True}},
            Status.FAIL,
        ),
        ("mozilla-modern", "TLS-MOZMOD-009", {"server_order": {"TLSv1.3": False}}, Status.PASS),
        (
            "mozilla-intermediate",
            "TLS-MOZINT-011",
            {"server_order": {"TLSv1.2": False, "TLSv1.3": None}},
            Status.PASS,
        ),
    ],
)
def test_collected_facts_are_judged(
    pack: str, rule: str, facts: dict[str, Any], expected: Status
) -> None:
    assert verdict(pack, rule, endpoint(**facts)).status is expected


def test_heartbleed_is_critical() -> None:
    finding = verdict("anssi-tls", "TLS-VULN-001", endpoint(heartbleed=True))
    assert finding.severity == "critical"


# --------------------------------------------------------------------------- texts and sources


def _rules(pack: str) -> list[Any]:
    return list(load_policy(POLICIES / f"{pack}.yaml", load_families().fact_catalogue()).rules)


@pytest.mark.parametrize("pack", TLS_PACKS)
def test_every_rule_cites_a_structured_source(pack: str) -> None:
    for rule in _rules(pack):
        assert rule.references, rule.id
        for reference in rule.references:
            assert isinstance(reference, Reference), (rule.id, reference)
            assert reference.document and reference.version and reference.section, rule.id


def test_the_protocol_floor_cites_r4() -> None:
    rules = {rule.id: rule for rule in _rules("anssi-tls")}
    for rule_id in ("TLS-PROTO-001", "TLS-PROTO-002"):
        assert "R4" in rules[rule_id].controls["anssi-tls"]
        assert rules[rule_id].references[0].section.startswith("R4")


def test_mozilla_dates_the_dhe_removal_to_5_8() -> None:
    text = (POLICIES / "mozilla-intermediate.yaml").read_text(encoding="utf-8")
    assert "removed in guidelines 5.8" in text
    assert "removed in 6.0" not in text and "removed in guidelines 6.0" not in text


def test_compression_remediation_names_no_invented_nginx_directive() -> None:
    (rule,) = [r for r in _rules("anssi-tls") if r.id == "TLS-COMP-001"]
    assert "ssl_compression" not in rule.remediation
    assert "SSLCompression off" in rule.remediation
