"""Certificate facts from the DER chain a server presented.

Two questions, two answers. *Will clients trust this server?* (``chain_trusted``) is
answered as OpenSSL answers it for Python's ``ssl``, curl and most servers' clients:
pyOpenSSL's ``X509StoreContext`` builds a path by names from the leaf through the
certificates the server sent (untrusted, in any order) to a trust anchor of the
system store or the scan's ``--ca-file``, then the leaf must be fit for TLS server
authentication (extendedKeyUsage, keyUsage), as OpenSSL's ``sslserver`` purpose
asks. *Is the chain well formed?* (``profile_issues``) applies RFC 5280 and the
CA/Browser Forum web-PKI profile: ``cryptography``'s verifier (whose error is mapped
to a short code) plus our own checks of each certificate. Keeping them apart matters:
a private PKI made without key identifiers is trusted by every mainstream client,
yet the web-PKI verifier refuses it; reporting that as "untrusted" would be false.

The hostname check (RFC 6125: subjectAltName only, a wildcard stands for exactly one
whole left-most label) is kept apart from trust too, so a report can say "trusted
chain, wrong name" rather than one undifferentiated failure.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import ssl
import warnings
from collections.abc import Sequence
from typing import Any

from audit.models import JSONValue
from checks.tls.profile import profile_issues


def certificate_facts(
    chain_der: Sequence[bytes],
    hostname: str | None,
    ca_file: str | None,
    now: dt.datetime | None = None,
) -> dict[str, JSONValue]:
    """The ``certificate`` fact for a served chain (leaf first)."""
    from cryptography import x509

    now = now or dt.datetime.now(dt.UTC)
    chain = [x509.load_der_x509_certificate(der) for der in chain_der]
    leaf = chain[0]
    anchors = trust_anchors(ca_file)
    trusted, trust_error = client_verdict(chain, anchors, now)
    facts: dict[str, JSONValue] = {
        **_summary(leaf),
        "san": subject_alt_names(leaf),
        "not_before": _iso(leaf.not_valid_before_utc),
        "days_left": (leaf.not_valid_after_utc - now).days,
        "lifetime_days": (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days,
        "expired": now > leaf.not_valid_after_utc,
        "not_yet_valid": now < leaf.not_valid_before_utc,
        "signature_hash": _hash_name(leaf),
        "serial": format(leaf.serial_number, "x"),
        "fingerprint_sha256": leaf.fingerprint(_sha256()).hex(),
        "self_signed": is_self_signed(leaf),
        "hostname_match": hostname_matches(leaf, hostname) if hostname else None,
        "chain_trusted": trusted,
        "trust_error": trust_error,
        "chain": [_summary(cert) for cert in chain],
        "chain_length": len(chain),
        "chain_ordered": is_ordered(chain),
        "chain_complete": trusted or is_complete(chain, anchors),
        "profile_issues": profile_issues(chain, anchors, now, trusted=trusted),
        "must_staple": must_staple(leaf),
        "sct_count": sct_count(leaf),
    }
    return facts


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(cert: Any) -> dict[str, JSONValue]:
    key_type, key_bits, curve = key_facts(cert.public_key())
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": _iso(cert.not_valid_after_utc),
        "key_type": key_type,
        "key_bits": key_bits,
        "key_curve": curve,
        "signature_algorithm": _signature_name(cert),
    }


def key_facts(key: Any) -> tuple[str, int | None, str | None]:
    """(type, size in bits, curve name) of a public key."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return type(key).__name__, None, None


def _signature_name(cert: Any) -> str:
    oid = cert.signature_algorithm_oid
    return str(getattr(oid, "_name", None) or oid.dotted_string)


def _hash_name(cert: Any) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # unsupported algorithm: report none rather than fail
        return None
    return algorithm.name if algorithm is not None else None


def subject_alt_names(cert: Any) -> list[str]:
    """DNS names and IP addresses of the subjectAltName extension."""
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
    return names + [str(a) for a in ext.get_values_for_type(x509.IPAddress)]


def hostname_matches(cert: Any, hostname: str) -> bool:
    """RFC 6125 matching against the subjectAltName (no CN fallback, as browsers)."""
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        address = None
    for name in subject_alt_names(cert):
        if address is not None:
            if _same_address(name, address):
                return True
        elif dns_name_matches(name, hostname):
            return True
    return False


def _same_address(name: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(name) == address
    except ValueError:
        return False


def dns_name_matches(pattern: str, hostname: str) -> bool:
    """One SAN DNS name against a host name; ``*`` only as a whole left-most label."""
    pattern = pattern.lower().rstrip(".")
    hostname = hostname.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == hostname
    suffix = pattern[2:]
    head, _, rest = hostname.partition(".")
    return bool(head) and "*" not in suffix and suffix.count(".") >= 1 and rest == suffix


def is_self_signed(cert: Any) -> bool:
    """Issued by its own key (not merely the same subject and issuer names).

    When the signature algorithm is one ``cryptography`` will not verify any more
    (SHA-1, MD5), equal names are taken as the answer.
    """
    from cryptography.exceptions import InvalidSignature

    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except InvalidSignature:
        return False
    except Exception:  # an algorithm no longer verifiable (SHA-1, MD5)
        return True
    return True


def is_ordered(chain: Sequence[Any]) -> bool:
    """Each certificate is followed by its issuer, as RFC 5246 asks."""
    return all(chain[i].issuer == chain[i + 1].subject for i in range(len(chain) - 1))


def is_complete(chain: Sequence[Any], anchors: Sequence[Any]) -> bool:
    """The served chain reaches something whose issuer a client already has."""
    last = chain[-1]
    if last.issuer == last.subject:
        return True
    return any(anchor.subject == last.issuer for anchor in anchors)


def must_staple(cert: Any) -> bool:
    """The RFC 7633 TLS Feature extension asks for status_request."""
    from cryptography import x509

    try:
        features = cert.extensions.get_extension_for_class(x509.TLSFeature).value
    except x509.ExtensionNotFound:
        return False
    return x509.TLSFeatureType.status_request in features


def sct_count(cert: Any) -> int:
    """Signed certificate timestamps embedded in the certificate."""
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound:
        return 0
    return len(ext)


def client_verdict(
    chain: Sequence[Any], anchors: Sequence[Any], now: dt.datetime
) -> tuple[bool, str | None]:
    """Whether a mainstream client trusts the chain, and if not, OpenSSL's reason.

    The path is built as OpenSSL builds it: by names, from the leaf through the
    served certificates (untrusted, any order, duplicates ignored) to an anchor; key
    identifiers help when present and are not required. The name is not checked here.
    """
    from OpenSSL import crypto

    if not anchors:
        return False, "no trust anchors available"
    store = crypto.X509Store()
    for anchor in _openssl_certificates(tuple(anchors)):
        store.add_cert(anchor)
    store.set_time(now)
    served = [crypto.X509.from_cryptography(cert) for cert in chain]
    try:
        crypto.X509StoreContext(store, served[0], served[1:]).verify_certificate()
    except crypto.X509StoreContextError as error:
        return False, str(error)[:300]
    refusal = server_purpose_refusal(chain[0])
    return refusal is None, refusal


@functools.cache
def _openssl_certificates(certs: tuple[Any, ...]) -> tuple[Any, ...]:
    """pyOpenSSL copies of the anchors (converted once per process and CA file)."""
    from OpenSSL import crypto

    return tuple(crypto.X509.from_cryptography(cert) for cert in certs)


def server_purpose_refusal(leaf: Any) -> str | None:
    """Why OpenSSL's ``sslserver`` purpose refuses the leaf, if it does.

    Clients verify with that purpose: an extendedKeyUsage without serverAuth, or a
    keyUsage allowing neither signature, key encipherment nor key agreement, ends the
    handshake whatever the path.
    """
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is not None and ExtendedKeyUsageOID.SERVER_AUTH not in usages:
        return "unsupported certificate purpose (extendedKeyUsage without serverAuth)"
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not (key_usage.digital_signature or key_usage.key_encipherment or key_usage.key_agreement):
        return "unsupported certificate purpose (keyUsage allows no TLS use)"
    return None


def web_pki_error(chain: Sequence[Any], anchors: Sequence[Any], now: dt.datetime) -> str | None:
    """``cryptography``'s verdict under the CA/B Forum web-PKI profile (None: accepted).

    Its verifier checks the name too, so it is given one of the certificate's own.
    """
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store

    if not anchors:
        return "no trust anchors available"
    subject = _own_subject(chain[0])
    if subject is None:
        return "the certificate has no subjectAltName"
    builder = PolicyBuilder().store(Store(list(anchors))).time(now.replace(tzinfo=None))
    try:
        verifier = builder.build_server_verifier(subject)
        verifier.verify(chain[0], list(chain[1:]))
    except (x509.verification.VerificationError, ValueError) as error:
        return str(error)[:300]
    return None


def _own_subject(cert: Any) -> Any:
    from cryptography import x509

    for name in subject_alt_names(cert):
        try:
            return x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            pass
        host = "rempart-check" + name[1:] if name.startswith("*.") else name
        try:
            return x509.DNSName(host)
        except ValueError:
            continue
    return None


def trust_anchors(ca_file: str | None) -> tuple[Any, ...]:
    """The system store, plus the scan's own CA file."""
    extra = _load_pem_file(ca_file) if ca_file else ()
    return system_store() + extra


@functools.cache
def system_store() -> tuple[Any, ...]:
    """Certificates of the system trust store (loaded once per process)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and os.path.isfile(candidate):
            return _load_pem_file(candidate)
    return ()


@functools.cache
def _load_pem_file(path: str) -> tuple[Any, ...]:
    from cryptography import x509

    with open(path, "rb") as handle:
        data = handle.read()
    with warnings.catch_warnings():  # system stores hold a few pre-RFC 5280 roots
        warnings.simplefilter("ignore")
        try:
            return tuple(x509.load_pem_x509_certificates(data))
        except ValueError:
            return ()
