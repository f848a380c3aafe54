"""Certificates for the labs: a root CA, an intermediate, and the leaves they issue.

Made with ``cryptography`` (imported when a certificate is made, not before), written
as PEM files a server loads. The options are the ones the TLS checks need to see both
ways: key identifiers on or off, CA keys of choice (EdDSA included), must-staple, the
signature hash, a validity window in the past or the future, self-signed leaves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate, its key and the chain a server should send, as PEM files."""

    cert_file: str
    key_file: str
    chain_file: str
    """Leaf followed by the intermediates the server sends."""
    cert: Any
    intermediates_file: str | None = None
    """The intermediates alone (None when the server sends only the leaf)."""


class Pki:
    """A root CA and an intermediate, issuing leaves into a directory.

    The root's PEM (``ca_file``) is what a scan passes as ``--ca-file``. With
    ``key_identifiers`` false, no certificate of this PKI carries the subject or
    authority key identifier extensions, as in many hand-made private PKIs: OpenSSL
    and browsers build the path by names, the web-PKI profile calls it malformed.
    ``root_key`` and ``issuing_key`` choose the CAs' keys (default EC P-256).
    """

    def __init__(
        self,
        directory: str | Path,
        name: str = "Rempart Lab",
        *,
        key_identifiers: bool = True,
        root_key: Any = None,
        issuing_key: Any = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key_identifiers = key_identifiers
        self.root_key = root_key or ec_key()
        self.root = _build(
            f"{name} Root CA",
            self.root_key,
            None,
            self.root_key,
            ca=True,
            days=3650,
            key_identifiers=key_identifiers,
        )
        self.intermediate_key = issuing_key or ec_key()
        self.intermediate = _build(
            f"{name} Intermediate CA",
            self.intermediate_key,
            (self.root, self.root_key),
            None,
            ca=True,
            days=1825,
            key_identifiers=key_identifiers,
        )
        self.ca_file = str(self._write("ca.pem", [self.root]))
        self._count = 0

    def issue(
        self,
        names: Sequence[str] = ("localhost",),
        *,
        key: Any = None,
        days_valid: tuple[int, int] = (-1, 90),
        self_signed: bool = False,
        send_intermediate: bool = True,
        issuer: str = "intermediate",
        hash_name: str = "sha256",
        must_staple: bool = False,
    ) -> Issued:
        """Issue a leaf for ``names``; validity is (start, end) in days from now."""
        key = key or ec_key()
        if self_signed:
            signer = None
        elif issuer == "root":
            signer = (self.root, self.root_key)
        else:
            signer = (self.intermediate, self.intermediate_key)
        cert = _build(
            names[0],
            key,
            signer,
            key if self_signed else None,
            ca=False,
            days=days_valid,
            names=names,
            hash_name=hash_name,
            must_staple=must_staple,
            key_identifiers=self.key_identifiers,
        )
        chain = [cert]
        if send_intermediate and not self_signed and issuer != "root":
            chain.append(self.intermediate)
        self._count += 1
        stem = f"leaf{self._count}"
        extra = str(self._write(f"{stem}-extra.pem", chain[1:])) if chain[1:] else None
        return Issued(
            cert_file=str(self._write(f"{stem}.pem", [cert])),
            key_file=str(self._write_key(f"{stem}.key", key)),
            chain_file=str(self._write(f"{stem}-chain.pem", chain)),
            cert=cert,
            intermediates_file=extra,
        )

    def _write(self, name: str, certs: Sequence[Any]) -> Path:
        path = self.directory / name
        path.write_bytes(b"".join(pem(c) for c in certs))
        return path

    def _write_key(self, name: str, key: Any) -> Path:
        path = self.directory / name
        path.write_bytes(key_pem(key))
        return path


def self_signed(
    names: Sequence[str] = ("localhost",), *, days_valid: tuple[int, int] = (-1, 90)
) -> tuple[Any, Any]:
    """A self-signed leaf for ``names`` and its key (EC P-256), without a PKI directory:
    for a lab that needs some certificate and whose checks do not judge it."""
    key = ec_key()
    cert = _build(names[0], key, None, key, ca=False, days=days_valid, names=names)
    return cert, key


def pem(cert: Any) -> bytes:
    """A certificate as PEM."""
    from cryptography.hazmat.primitives.serialization import Encoding

    data: bytes = cert.public_bytes(Encoding.PEM)
    return data


def key_pem(key: Any) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization

    data: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return data


def ec_key() -> Any:
    """An EC P-256 private key (the default for every certificate of a lab)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(bits: int = 2048) -> Any:
    """An RSA private key (1024 bits is allowed: the lab needs weak keys)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _build(
    common_name: str,
    key: Any,
    signer: tuple[Any, Any] | None,
    self_key: Any,
    *,
    ca: bool,
    days: int | tuple[int, int],
    names: Sequence[str] = (),
    hash_name: str = "sha256",
    must_staple: bool = False,
    key_identifiers: bool = True,
) -> Any:
    from cryptography import x509

    start, end = (-1, days) if isinstance(days, int) else days
    now = dt.datetime.now(dt.UTC)
    subject = _name(common_name)
    signing_key = signer[1] if signer else (self_key or key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer[0].subject if signer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + start * _ONE_DAY)
        .not_valid_after(now + end * _ONE_DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_key_usage(ca), critical=True)
    )
    if key_identifiers:
        builder = _with_key_identifiers(builder, key, signer)
    if not ca:
        builder = _with_server_names(builder, names)
    if must_staple:
        builder = builder.add_extension(
            x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False
        )
    return builder.sign(signing_key, _sign_hash(signing_key, hash_name))


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _with_key_identifiers(builder: Any, key: Any, signer: tuple[Any, Any] | None) -> Any:
    from cryptography import x509

    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if signer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer[1].public_key()),
            critical=False,
        )
    return builder


def _with_server_names(builder: Any, names: Sequence[str]) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    return builder.add_extension(
        x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
    ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)


def _sign_hash(signing_key: Any, hash_name: str) -> Any:
    """The hash to sign with: none for EdDSA keys, whose algorithm fixes its own."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

    if isinstance(signing_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return getattr(hashes, hash_name.upper())()


def _key_usage(ca: bool) -> Any:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(name: str) -> Any:
    import ipaddress

    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
