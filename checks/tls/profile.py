"""Deviations of a served chain from RFC 5280 and the CA/Browser Forum profile.

Mainstream clients trust many chains that the web-PKI profile calls malformed: a
private CA made without key identifiers, a CA certificate without keyUsage. Those are
not trust failures (``chain_trusted`` says what clients decide) but they are worth a
low-severity finding: a stricter client (Python 3.13's ``VERIFY_X509_STRICT``, a
browser policy, a public CA's linter) may refuse them tomorrow. Each deviation is a
``{code, subject, detail}`` record, the codes stable for policies to match on.

Two sources, merged: ``cryptography``'s web-PKI verifier (it stops at the first
fault, which is mapped to a code; an error about trust, time or names is not a
profile issue) and our own checks of each served certificate and of the anchor the
chain ends on, which see every fault at once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from typing import Any

from audit.models import JSONValue

_AKI, _SKI, _KU, _BC, _SAN, _EKU = (
    "2.5.29.35",
    "2.5.29.14",
    "2.5.29.15",
    "2.5.29.19",
    "2.5.29.17",
    "2.5.29.37",
)

MISSING_EXTENSION_CODES = {
    _AKI: "missing_aki",
    _SKI: "missing_ski",
    _KU: "missing_key_usage",
    _BC: "missing_basic_constraints",
    _SAN: "leaf_without_san",
    _EKU: "leaf_without_server_auth",
}
"""cryptography's "missing required extension <oid>" error, by OID."""


def profile_issues(
    chain: Sequence[Any], anchors: Sequence[Any], now: dt.datetime, *, trusted: bool
) -> list[JSONValue]:
    """Every deviation found in the served chain (and its anchor), without repeats."""
    from checks.tls.certificate import web_pki_error

    issues: dict[tuple[str, str], dict[str, JSONValue]] = {}
    served = list(dict.fromkeys(chain))  # a leaf sent twice is one certificate
    anchor = _anchor_of(chain[-1], anchors)
    for position, cert in enumerate([*served, *([anchor] if anchor is not None else [])]):
        for code, detail in _certificate_issues(cert, is_leaf=position == 0):
            _add(issues, code, cert, detail)
    error = web_pki_error(chain, anchors, now)
    if error is not None:
        mapped = verifier_issue(error, trusted=trusted)
        if mapped is not None:
            _add(issues, mapped, _blamed(error, chain), error)
    return list(issues.values())


def verifier_issue(error: str, *, trusted: bool) -> str | None:
    """The code for a web-PKI verifier error (None: not about the profile).

    A missing extension maps to its code. Any other refusal of a chain that clients
    trust is a profile issue of its own (``web_pki_rejected``); when clients do not
    trust it either, the refusal is left to ``trust_error``.
    """
    missing = _MISSING.search(error)
    if missing:
        return MISSING_EXTENSION_CODES.get(missing.group(1), "missing_required_extension")
    return "web_pki_rejected" if trusted else None


_MISSING = re.compile(r"invalid extension: ([0-9.]+): .*missing required extension", re.I)


def _add(
    issues: dict[tuple[str, str], dict[str, JSONValue]], code: str, cert: Any, detail: str
) -> None:
    """Record one issue; one already found for the same certificate (or, for an error
    that names no certificate, for any) is not repeated."""
    subject = cert.subject.rfc4514_string() if cert is not None else ""
    if (code, subject) in issues or (not subject and any(k[0] == code for k in issues)):
        return
    issues[(code, subject)] = {"code": code, "subject": subject, "detail": detail}


def _blamed(error: str, chain: Sequence[Any]) -> Any:
    """The served certificate a verifier error names, when it names one."""
    return next((cert for cert in chain if f"subject={cert.subject!r}" in error), None)


def _anchor_of(last: Any, anchors: Sequence[Any]) -> Any:
    """The anchor that issued the last served certificate (None when not found or
    when the chain already ends on a self-issued root)."""
    if last.issuer == last.subject:
        return None
    return next((anchor for anchor in anchors if anchor.subject == last.issuer), None)


def _certificate_issues(cert: Any, *, is_leaf: bool) -> Iterator[tuple[str, str]]:
    """(code, detail) of each deviation of one certificate."""
    extensions = {ext.oid.dotted_string: ext for ext in cert.extensions}
    if cert.issuer != cert.subject and _AKI not in extensions:
        yield "missing_aki", "no authorityKeyIdentifier (RFC 5280 §4.2.1.1)"
    yield from (_leaf_issues if is_leaf else _ca_issues)(extensions)


def _leaf_issues(extensions: dict[str, Any]) -> Iterator[tuple[str, str]]:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    constraints = extensions.get(_BC)
    if constraints is not None and constraints.value.ca:
        yield "leaf_is_ca", "the server certificate has basicConstraints cA=TRUE"
    if _SAN not in extensions:
        yield "leaf_without_san", "no subjectAltName (CA/B Forum BR §7.1.2)"
    usages = extensions.get(_EKU)
    if usages is None or ExtendedKeyUsageOID.SERVER_AUTH not in usages.value:
        yield "leaf_without_server_auth", "no extendedKeyUsage serverAuth (CA/B Forum BR §7.1.2)"


def _ca_issues(extensions: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if _SKI not in extensions:
        yield "missing_ski", "CA certificate without subjectKeyIdentifier (RFC 5280 §4.2.1.2)"
    constraints = extensions.get(_BC)
    if constraints is None:
        yield "missing_basic_constraints", "CA certificate without basicConstraints (§4.2.1.9)"
    elif not constraints.value.ca:
        yield "issuer_not_ca", "an issuing certificate with basicConstraints cA=FALSE"
    elif not constraints.critical:
        yield "basic_constraints_not_critical", "basicConstraints of a CA not critical (§4.2.1.9)"
    key_usage = extensions.get(_KU)
    if key_usage is None:
        yield "ca_without_key_usage", "CA certificate without keyUsage (RFC 5280 §4.2.1.3)"
    elif not key_usage.value.key_cert_sign:
        yield "ca_without_key_cert_sign", "CA keyUsage without keyCertSign (§4.2.1.3)"
