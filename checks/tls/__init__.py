# ruff: noqa: E501  (the fact table reads best one fact a line)
"""The ``tls`` check family: what a TLS endpoint accepts, and the certificate it shows.

Targets: ``tls://host[:port]`` (default 443), and endpoints audited through STARTTLS:
``smtp://host[:port]`` (25), ``imap://host[:port]`` (143) and ``pop3://host[:port]``
(110). Query parameters: ``sni=NAME`` (server name to send when the host is an
address) and ``http_port=N`` (plain-HTTP port checked for a redirect to HTTPS, default
80, ``0`` to skip; ``tls://`` only).

How it observes: protocols, suites, groups and protocol hygiene come from raw
ClientHellos built from registry tables frozen from cryptoparser and cryptodatahub
(:mod:`checks.tls.wire`), sent by short
asyncio probes that read the server's first flight and hang up
(:mod:`checks.tls.probe`, :mod:`checks.tls.enumerate`). So what is reported is what
the *server* accepts, whatever the local OpenSSL allows. The certificate chain comes
from the clear-text Certificate message of a TLS ≤ 1.2 probe, or, on TLS 1.3-only
servers, from one handshake through Python's ``ssl``; the same handshake reads the
HTTP response headers for HSTS (:mod:`checks.tls.http`).

Addresses: a name may resolve to several addresses; they are tried in order and the
first that answers is enumerated (fact ``address``; all of them in ``addresses``).
One resource per target keeps findings stable when DNS rotates its answers.

Errors are data: refused, timed out (including a port that accepts TCP and then
stays silent), unreachable, reset, a non-TLS speaker or a failed STARTTLS become a
:class:`~audit.models.Problem` within ``ctx.timeout``; facts that could not be seen
(the certificate of a server the local library cannot talk to) go to
``Resource.unknown``.

Servers that stop answering: a rate limiter or an IPS in front of a server may let
a few handshakes through and then reset, close, stay silent or send a block page.
None of these is a TLS refusal (an alert, or a ServerHello choosing nothing that is
left to offer), so it never ends an enumeration as "nothing more is accepted". Such a
probe is retried with exponential back-off and jitter, the endpoint then probed one
connection at a time (:class:`checks.tls.probe.Patience`), within ``ctx.timeout``; a
healthy server never pays for it. When a probe still gets no verdict, the facts it
was for are unknown (reason ``unreachable``, or ``timeout`` for silence), each on
its own account: ``cipher_suites`` with ``forward_secrecy``, ``aead_only``,
``key_exchanges``, ``weakest_suite``, ``strongest_suite`` and ``server_order``;
``server_order`` alone; ``groups``; ``dh_bits``; ``compression``; ``fallback_scsv``;
``heartbeat`` with ``heartbleed``. A protocol probe without a verdict makes
``protocols``, the suite facts and ``groups`` unknown. The message names the probe,
the failure and the attempts made.

Session resumption (:mod:`checks.tls.resumption`) and the session and ticket
handshakes need completed handshakes, made with the local library; Heartbleed is a
raw probe sent before the handshake ends (:func:`checks.tls.enumerate.heartbleed`).
SSLv2, SSLv3 and Heartbleed are detected on the wire; no local server can offer them,
so their positive cases are tested against a first-flight-only server written from
the RFCs (:class:`checks.tls.lab.RawHelloServer`).

Not observed yet: ROBOT, the SCTs delivered in the TLS extension or OCSP response
(``sct_count`` counts the certificate's embedded SCTs), OCSP stapling on TLS 1.3-only
servers (null: the status travels in the encrypted Certificate message and Python's
``ssl`` does not expose it), STARTTLS for LDAP/FTP/XMPP (one function each in
:mod:`checks.tls.starttls`), suites the registry does not know (never offered).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import SplitResult

from audit.models import Observation, Target
from audit.plugins import CheckContext, CheckFamily, FactDoc, ResourceTypeDoc

if TYPE_CHECKING:
    from concurrent.futures import Future

    from audit.labkit import DemoContext, DemoPart

_CERT = "certificate."

FACTS = (
    FactDoc("host", "string", "Host name or address of the target, as given."),
    FactDoc("port", "integer", "TCP port."),
    FactDoc("address", "string", "The address that answered and was enumerated."),
    FactDoc(
        "addresses", "list[string]", "Every address the host resolved to (or the scope guard gave)."
    ),
    FactDoc(
        "sni", "string|null", "Server name sent in the SNI extension (null for bare addresses)."
    ),
    FactDoc(
        "starttls",
        "string|null",
        "Plain-text protocol upgraded with STARTTLS (`smtp`, `imap`, `pop3`), null for direct TLS.",
    ),
    FactDoc(
        "protocols",
        "list[string]",
        "Versions the server accepts, oldest first, among SSLv2 SSLv3 TLSv1.0 TLSv1.1 TLSv1.2 TLSv1.3 (raw probes, independent of the local OpenSSL).",
    ),
    FactDoc(
        "cipher_suites",
        "map[string, list[string]]",
        "Per protocol, the IANA names of the suites the server accepts, in the order found (SSLv2: empty list). Unknown, with this and every fact read off it, when a probe got no TLS verdict (reset, silence, a block page) even after retries.",
    ),
    FactDoc(
        "server_order",
        "map[string, bool|null]",
        "Per protocol: true when the server imposes its own suite order, false when it follows the client's, null with fewer than two suites.",
    ),
    FactDoc(
        "forward_secrecy",
        "bool",
        "Every accepted suite uses an ephemeral key exchange (ECDHE/DHE, or TLS 1.3).",
    ),
    FactDoc(
        "aead_only",
        "bool",
        "Every accepted suite uses an AEAD cipher (GCM, CCM, ChaCha20-Poly1305).",
    ),
    FactDoc(
        "key_exchanges",
        "list[string]",
        "Key-exchange classes of the accepted suites (ECDHE, DHE, RSA, ...; TLS 1.3 counts as ECDHE).",
    ),
    FactDoc(
        "weakest_suite",
        "string|null",
        "Weakest accepted suite (weak cipher, then no FS, then no AEAD, then key size).",
    ),
    FactDoc("strongest_suite", "string|null", "Strongest accepted suite by the same ranking."),
    FactDoc(
        "groups",
        "list[string]",
        "Named groups accepted for key exchange (TLS 1.3 by HelloRetryRequest, TLS 1.2 by ServerKeyExchange): x25519, x448, secp256r1, secp384r1, secp521r1, ffdhe2048.., X25519MLKEM768, ... Unknown when a probe got no TLS verdict even after retries (so are dh_bits and each hygiene fact, on their own probes).",
    ),
    FactDoc(
        "dh_bits",
        "integer|null",
        "Size of the DH prime used by the DHE suites (null when no DHE suite).",
    ),
    FactDoc(
        "secure_renegotiation",
        "bool|null",
        "RFC 5746 renegotiation_info acknowledged (null when only TLS 1.3 or SSLv2 is spoken).",
    ),
    FactDoc(
        "extended_master_secret",
        "bool|null",
        "RFC 7627 extended master secret acknowledged (TLS ≤ 1.2).",
    ),
    FactDoc(
        "session_tickets", "bool|null", "The server offers RFC 5077 session tickets (TLS ≤ 1.2)."
    ),
    FactDoc(
        "session_id_resumption",
        "bool|null",
        "A second TLS ≤ 1.2 handshake offering the first one's session ID (tickets refused) was resumed; null when only TLS 1.3 is spoken or the local library could not complete a handshake.",
    ),
    FactDoc(
        "session_ticket_resumption",
        "bool|null",
        "A second handshake presenting the ticket the server issued (RFC 5077, or a TLS 1.3 PSK ticket) was resumed; false when no ticket was issued, null when the local library could not complete a handshake.",
    ),
    FactDoc("compression", "bool|null", "The server accepts TLS compression (DEFLATE; CRIME)."),
    FactDoc(
        "fallback_scsv",
        "bool|null",
        "The server refuses a downgraded hello carrying TLS_FALLBACK_SCSV (null with a single protocol).",
    ),
    FactDoc(
        "heartbeat",
        "bool|null",
        "The server acknowledges the RFC 6520 heartbeat extension (TLS ≤ 1.2; null when only TLS 1.3 or SSLv2 is spoken).",
    ),
    FactDoc(
        "heartbleed",
        "bool|null",
        "CVE-2014-0160: the server answers a heartbeat request that claims more payload than it carries (sent before the handshake ends; the answer is never read beyond its record header). Null when only TLS 1.3 or SSLv2 is spoken.",
    ),
    FactDoc(
        "ocsp_stapled",
        "bool|null",
        "An OCSP response was stapled in the TLS ≤ 1.2 handshake (null when only TLS 1.3).",
    ),
    FactDoc(
        "certificate",
        "object|null",
        "The leaf certificate and chain (keys below); null with a reason in `unknown` when no chain could be read.",
    ),
    FactDoc(_CERT + "subject", "string", "Subject DN (RFC 4514)."),
    FactDoc(_CERT + "issuer", "string", "Issuer DN (RFC 4514)."),
    FactDoc(_CERT + "san", "list[string]", "subjectAltName DNS names and IP addresses."),
    FactDoc(_CERT + "not_before", "string", "Start of validity, ISO 8601 UTC."),
    FactDoc(_CERT + "not_after", "string", "End of validity, ISO 8601 UTC."),
    FactDoc(_CERT + "days_left", "integer", "Whole days until not_after (negative once expired)."),
    FactDoc(_CERT + "lifetime_days", "integer", "not_after minus not_before, in days."),
    FactDoc(_CERT + "expired", "bool", "now > not_after."),
    FactDoc(_CERT + "not_yet_valid", "bool", "now < not_before."),
    FactDoc(_CERT + "key_type", "string", "RSA, EC, Ed25519, Ed448 or DSA."),
    FactDoc(_CERT + "key_bits", "integer", "Public key size in bits."),
    FactDoc(_CERT + "key_curve", "string|null", "Curve of an EC key (secp256r1, ...)."),
    FactDoc(
        _CERT + "signature_algorithm",
        "string",
        "Signature algorithm (sha256WithRSAEncryption, ecdsa-with-SHA256, ed25519, ...).",
    ),
    FactDoc(
        _CERT + "signature_hash",
        "string|null",
        "Hash of the signature (sha256, sha1, ...); null for EdDSA.",
    ),
    FactDoc(_CERT + "serial", "string", "Serial number, hexadecimal."),
    FactDoc(_CERT + "fingerprint_sha256", "string", "SHA-256 of the DER leaf, hexadecimal."),
    FactDoc(_CERT + "self_signed", "bool", "The leaf is signed by its own key."),
    FactDoc(
        _CERT + "hostname_match",
        "bool|null",
        "RFC 6125 match of the SNI name (or the address) against the SAN; null when there is no name.",
    ),
    FactDoc(
        _CERT + "chain_trusted",
        "bool",
        "What mainstream clients decide: OpenSSL builds a path by names from the leaf through the served certificates (any order) to an anchor of the system store or --ca-file, valid at scan time, and the leaf is fit for TLS server authentication (OpenSSL's sslserver purpose); the name is judged apart (hostname_match). Web-PKI profile faults that clients tolerate (missing key identifiers, ...) are in profile_issues, not here.",
    ),
    FactDoc(
        _CERT + "trust_error",
        "string|null",
        "Why clients refuse the chain, in OpenSSL's words (unable to get local issuer certificate, certificate has expired, ...).",
    ),
    FactDoc(
        _CERT + "profile_issues",
        "list[object]",
        "Deviations of the served chain (and of the anchor it ends on) from RFC 5280 and the CA/Browser Forum profile, each {code, subject, detail}; empty when none. From our checks of each certificate and from cryptography's web-PKI verifier, whose first error is mapped to a code. Codes: missing_aki, missing_ski, missing_key_usage, ca_without_key_usage, ca_without_key_cert_sign, missing_basic_constraints, basic_constraints_not_critical, issuer_not_ca, leaf_is_ca, leaf_without_san, leaf_without_server_auth, missing_required_extension (another extension), web_pki_rejected (any other refusal of a chain clients trust).",
    ),
    FactDoc(
        _CERT + "chain",
        "list[object]",
        "Served certificates, leaf first: subject, issuer, not_after, key_type, key_bits, key_curve, signature_algorithm.",
    ),
    FactDoc(_CERT + "chain_length", "integer", "Number of certificates served."),
    FactDoc(_CERT + "chain_ordered", "bool", "Each served certificate is followed by its issuer."),
    FactDoc(
        _CERT + "chain_complete",
        "bool",
        "The served chain reaches a trust anchor or ends with a root (no missing intermediate).",
    ),
    FactDoc(
        _CERT + "must_staple",
        "bool",
        "The certificate carries the TLS Feature status_request (OCSP must-staple).",
    ),
    FactDoc(_CERT + "ocsp_stapled", "bool|null", "Same as the top-level ocsp_stapled."),
    FactDoc(
        _CERT + "sct_count", "integer", "Signed certificate timestamps embedded in the certificate."
    ),
    FactDoc(
        "hsts",
        "object|null",
        "Strict-Transport-Security of the HTTPS response: {present, max_age, include_subdomains, preload}; null when the endpoint does not speak HTTP, and for STARTTLS targets.",
    ),
    FactDoc(
        "http_redirect",
        "bool|null",
        "Plain HTTP (port 80 of the same address, or http_port) redirects to https:// on the same host (a `Location` to another host, or with userinfo naming another host, is false); null when nothing answers HTTP there.",
    ),
    FactDoc("probes", "integer", "Number of handshakes the enumeration cost (retries included)."),
)

RESOURCE_TYPES = (
    ResourceTypeDoc(
        "tls.endpoint",
        "A TLS endpoint (direct TLS, or STARTTLS for SMTP, IMAP, POP3): key tls://host:port, smtp://host:port, imap://host:port or pop3://host:port.",
        FACTS,
    ),
)


def _parse(split: SplitResult, raw: str) -> Target:
    from checks.tls.targets import parse

    return parse(split, raw)


def _collect(target: Target, ctx: CheckContext) -> Observation:
    from checks.tls.collect import collect

    return collect(target, ctx)


def _start(target: Target, ctx: CheckContext) -> Future[Observation]:
    from checks.tls.collect import start

    return start(target, ctx)


def _demo(ctx: DemoContext) -> DemoPart:
    """This family's part of ``rempart demo``; the lab is imported only when it runs."""
    from checks.tls.lab import demo_part

    return demo_part(ctx)


FAMILY = CheckFamily(
    name="tls",
    description="TLS endpoints: protocols, cipher suites, groups, certificate, HSTS (raw probes).",
    schemes=("tls", "smtp", "imap", "pop3"),
    resource_types=RESOURCE_TYPES,
    parse=_parse,
    collect=_collect,
    start=_start,
    demo=_demo,
)
