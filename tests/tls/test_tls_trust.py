"""Trust as clients judge it, against ``openssl s_server`` presenting real private chains.

Each case is compared with Python's ``ssl`` (OpenSSL underneath, as curl and most
clients) connecting to the same server with the same root: ``chain_trusted`` must say
what it says. A private PKI made without key identifiers is trusted by clients and
reported in ``profile_issues``, never as an untrusted chain.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from audit.models import Resource, Status
from checks.tls import lab

from .conftest import facts_of, verdict


@pytest.fixture(scope="module")
def plain_pki(tmp_path_factory: pytest.TempPathFactory) -> lab.Pki:
    """root → intermediate → leaf, made without AKI/SKI as many hand-made PKIs are."""
    return lab.Pki(tmp_path_factory.mktemp("plain-pki"), "Plain Lab", key_identifiers=False)


def python_trusts(port: int, ca_file: str) -> bool:
    """Python's ``ssl`` verdict on the server's chain, with the same anchor."""
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
            context.wrap_socket(sock, server_hostname="localhost"),
        ):
            return True
    except ssl.SSLCertVerificationError:
        return False


def served(issued: lab.Issued, extra: Sequence[Any], directory: Path) -> lab.Issued:
    """The same leaf, the server sending ``extra`` after it (None: nothing)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    if not extra:
        return dataclasses.replace(issued, intermediates_file=None)
    path = directory / f"extra-{len(list(directory.iterdir()))}.pem"
    path.write_bytes(b"".join(cert.public_bytes(Encoding.PEM) for cert in extra))
    return dataclasses.replace(issued, intermediates_file=str(path))


def judged(issued: lab.Issued, ca_file: str) -> tuple[dict[str, Any], bool, Resource]:
    """(certificate facts, Python's verdict, the resource) for an s_server showing ``issued``."""
    with lab.OpenSslServer(issued, www=False) as server:
        python = python_trusts(server.port, ca_file)
        facts = facts_of(f"tls://localhost:{server.port}?http_port=0", ca_file)
    resource = Resource("tls.endpoint", "tls://localhost", "tls://localhost", "adhoc", facts)
    return facts["certificate"], python, resource


@pytest.mark.parametrize("key_identifiers", [True, False], ids=["with-kid", "without-kid"])
def test_private_chain_is_trusted_as_python_trusts_it(
    key_identifiers: bool, pki: lab.Pki, plain_pki: lab.Pki
) -> None:
    # given s_server sending leaf + intermediate of a private PKI, the root as --ca-file
    authority = pki if key_identifiers else plain_pki
    certificate, python, resource = judged(authority.issue(["localhost"]), authority.ca_file)
    # then Rempart's verdict is Python's: trusted, and CERT-TRUST-001 passes
    assert python is True
    assert certificate["chain_trusted"] is True, certificate["trust_error"]
    assert certificate["trust_error"] is None
    assert verdict("certificates", "CERT-TRUST-001", resource).status is Status.PASS
    # and the missing key identifiers are a profile issue of their own (low severity)
    codes = {issue["code"] for issue in certificate["profile_issues"]}
    profile = verdict("certificates", "CERT-PROFILE-001", resource)
    if key_identifiers:
        assert codes == set()
        assert profile.status is Status.PASS
    else:
        assert {"missing_aki", "missing_ski"} <= codes
        assert profile.status is Status.FAIL
        assert profile.severity == "low"


def test_missing_intermediate_is_untrusted_and_incomplete(plain_pki: lab.Pki) -> None:
    # given a server of the PKI without key identifiers that sends its leaf alone
    leaf = plain_pki.issue(["localhost"], send_intermediate=False)
    certificate, python, resource = judged(leaf, plain_pki.ca_file)
    # then clients refuse it, and so do we: incomplete chain, CERT-CHAIN-001 fails
    assert python is False
    assert certificate["chain_trusted"] is False
    assert "local issuer" in certificate["trust_error"]
    assert certificate["chain_complete"] is False
    assert verdict("certificates", "CERT-CHAIN-001", resource).status is Status.FAIL


@pytest.mark.parametrize("order", ["leaf twice", "root before intermediate"])
def test_disordered_chains_are_trusted_but_unordered(
    order: str, plain_pki: lab.Pki, tmp_path: Path
) -> None:
    # given a chain clients still accept, sent out of order
    leaf = plain_pki.issue(["localhost"])
    extra = {
        "leaf twice": [leaf.cert, plain_pki.intermediate],
        "root before intermediate": [plain_pki.root, plain_pki.intermediate],
    }[order]
    certificate, python, resource = judged(served(leaf, extra, tmp_path), plain_pki.ca_file)
    # then trusted as Python trusts it, and reported unordered
    assert python is True
    assert certificate["chain_trusted"] is True
    assert certificate["chain_ordered"] is False
    assert verdict("certificates", "CERT-CHAIN-002", resource).status is Status.FAIL
    # and a duplicated leaf is not mistaken for a CA certificate
    assert "issuer_not_ca" not in {issue["code"] for issue in certificate["profile_issues"]}


def test_leaf_without_server_auth_is_refused_as_clients_refuse_it(
    pki: lab.Pki, tmp_path: Path
) -> None:
    # given a leaf whose extendedKeyUsage says clientAuth only
    leaf = _client_auth_leaf(pki, tmp_path)
    certificate, python, _ = judged(leaf, pki.ca_file)
    # then Python refuses it (unsupported purpose), and so do we
    assert python is False
    assert certificate["chain_trusted"] is False
    assert "purpose" in certificate["trust_error"]
    assert "leaf_without_server_auth" in {i["code"] for i in certificate["profile_issues"]}


def _client_auth_leaf(pki: lab.Pki, directory: Path) -> lab.Issued:
    """A leaf from the lab intermediate whose EKU is clientAuth only."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(pki.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(pki.intermediate_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "client-auth.pem", directory / "client-auth.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    leaf = lab.Issued(str(cert_file), str(key_file), str(cert_file), cert)
    return served(leaf, [pki.intermediate], directory)
