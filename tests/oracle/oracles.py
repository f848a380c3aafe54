"""What the independent tools say about one TLS server, reduced to Rempart's vocabulary.

Three implementations that share no code with Rempart's raw probes:

* sslyze (nassl's OpenSSL builds, and cryptography's path validation), run as a separate
  process from its own virtual environment: it pins cryptography and nassl versions of
  its own, so it cannot share ours;
* Python's ``ssl`` (the system OpenSSL): one full handshake per protocol version with
  ``minimum_version == maximum_version``, and OpenSSL's own chain building for trust;
* the ``openssl x509 -checkhost/-checkip`` command, RFC 6125 matching by OpenSSL, on the
  leaf the server sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import ssl
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SSLYZE_KEYS = {
    "SSLv2": "ssl_2_0_cipher_suites",
    "SSLv3": "ssl_3_0_cipher_suites",
    "TLSv1.0": "tls_1_0_cipher_suites",
    "TLSv1.1": "tls_1_1_cipher_suites",
    "TLSv1.2": "tls_1_2_cipher_suites",
    "TLSv1.3": "tls_1_3_cipher_suites",
}
SSLYZE_KEY_TYPES = {
    "RSAPublicKey": "RSA",
    "ECPublicKey": "EC",
    "EllipticCurvePublicKey": "EC",
    "Ed25519PublicKey": "Ed25519",
    "Ed448PublicKey": "Ed448",
    "DSAPublicKey": "DSA",
}
"""sslyze names a key by its Python class (cryptography's, which changed across versions)."""
PYTHON_VERSIONS = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
X509_V_FLAG_NO_CHECK_TIME = 0x200000
"""OpenSSL's flag to build the path without judging validity dates (not named by ``ssl``)."""
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SslyzeView:
    """sslyze's findings on one server."""

    protocols: list[str]
    suites: dict[str, set[str]]
    trusted_for_name: bool
    """Path validation against the lab CA, for the name asked (cryptography's verifier)."""
    validation_error: str | None
    chain_pem: list[str]
    chain_ordered: bool | None
    key_type: str
    key_bits: int | None
    fingerprint_sha256: str
    hsts: dict[str, Any] | None


def sslyze_scan(
    python: Path, port: int, sni: str | None, ca_file: str, workdir: Path, http: bool = False
) -> SslyzeView:
    """Run sslyze's command line on 127.0.0.1:``port`` and read its JSON output."""
    out = workdir / f"sslyze-{port}.json"
    target = f"{sni}:{port}{{{LOOPBACK}}}" if sni else f"{LOOPBACK}:{port}"
    command = [
        str(python),
        "-m",
        "sslyze",
        "--quiet",
        f"--json_out={out}",
        f"--certinfo_ca_file={ca_file}",
        *("--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3", "--certinfo"),
        *(["--http_headers"] if http else []),
        target,
    ]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if not out.exists():
        raise RuntimeError(f"sslyze failed ({run.returncode}): {run.stderr[-2000:]}")
    (server,) = json.loads(out.read_text())["server_scan_results"]
    if server["scan_status"] != "COMPLETED":
        raise RuntimeError(f"sslyze could not scan: {server.get('connectivity_error_trace')}")
    return _view(server["scan_result"])


def _view(result: dict[str, Any]) -> SslyzeView:
    suites: dict[str, set[str]] = {}
    for protocol, key in SSLYZE_KEYS.items():
        attempt = result[key]
        if attempt["status"] != "COMPLETED":
            raise RuntimeError(f"sslyze {key}: {attempt.get('error_trace')}")
        accepted = attempt["result"]["accepted_cipher_suites"]
        if attempt["result"]["is_tls_version_supported"]:
            suites[protocol] = {a["cipher_suite"]["name"] for a in accepted}
    deployment = result["certificate_info"]["result"]["certificate_deployments"][0]
    (custom,) = [
        p
        for p in deployment["path_validation_results"]
        if p["trust_store"]["name"] == "Supplied CA file"
    ]
    leaf = deployment["received_certificate_chain"][0]
    return SslyzeView(
        protocols=list(suites),
        suites=suites,
        trusted_for_name=bool(custom["was_validation_successful"]),
        validation_error=custom["validation_error"],
        chain_pem=[c["as_pem"] for c in deployment["received_certificate_chain"]],
        chain_ordered=deployment["received_chain_has_valid_order"],
        key_type=SSLYZE_KEY_TYPES.get(leaf["public_key"]["algorithm"], "?"),
        key_bits=leaf["public_key"]["key_size"],
        fingerprint_sha256=_sha256_hex(leaf["as_pem"]),
        hsts=_hsts(result),
    )


def _sha256_hex(pem: str) -> str:
    """SHA-256 of the DER certificate (sslyze's own field is base64, ours hexadecimal)."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def _hsts(result: dict[str, Any]) -> dict[str, Any] | None:
    headers = result.get("http_headers") or {}
    if headers.get("status") != "COMPLETED":
        return None
    found = (headers.get("result") or {}).get("strict_transport_security_header")
    if not found:
        return {"present": False}
    return {
        "present": True,
        "max_age": found["max_age"],
        "include_subdomains": bool(found["include_subdomains"]),
        "preload": bool(found["preload"]),
    }


# --------------------------------------------------------------------------- Python's ssl


def python_accepts(port: int, sni: str | None, version: str) -> bool | None:
    """Whether a full handshake at exactly ``version`` succeeds (None: the local OpenSSL
    cannot offer that version, so Python's ``ssl`` has no opinion)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
        _set_versions(context, PYTHON_VERSIONS[version], PYTHON_VERSIONS[version])
    except (ValueError, ssl.SSLError):
        return None
    return _handshake(context, port, sni) is None


def python_trusts(port: int, sni: str | None, ca_file: str) -> tuple[bool, str | None]:
    """OpenSSL's path validation of the served chain, dates included, name excluded.

    ``create_default_context(cafile=...)`` trusts only the lab CA; the protocol floor and
    security level are lowered so that legacy servers are judged on their chain, not on
    the handshake.
    """
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False
    _set_versions(context, ssl.TLSVersion.TLSv1, ssl.TLSVersion.MAXIMUM_SUPPORTED)
    context.set_ciphers("ALL:@SECLEVEL=0")
    error = _handshake(context, port, sni)
    return error is None, error


def python_chain_complete(port: int, sni: str | None, ca_file: str, served: list[str]) -> bool:
    """Whether OpenSSL builds a path from the served certificates alone to an anchor.

    Anchors are the lab root plus any self-signed certificate the server sent (a chain that
    ends with a root is complete, trusted or not); dates are not judged, so an expired
    leaf with its intermediate is complete.
    """
    anchors = Path(ca_file).read_text() + "".join(p for p in served if _self_issued(p))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=anchors)
    context.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
    _set_versions(context, ssl.TLSVersion.TLSv1, ssl.TLSVersion.MAXIMUM_SUPPORTED)
    context.set_ciphers("ALL:@SECLEVEL=0")
    return _handshake(context, port, sni) is None


def _set_versions(
    context: ssl.SSLContext, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion
) -> None:
    """Set the version range; TLS 1.0 and 1.1 are deprecated, and asked for on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = minimum
        context.maximum_version = maximum


def _self_issued(pem: str) -> bool:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.issuer == cert.subject


def _handshake(context: ssl.SSLContext, port: int, sni: str | None) -> str | None:
    """None when the handshake completes, else the error OpenSSL gave."""
    try:
        with (
            socket.create_connection((LOOPBACK, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=sni) as tls,
        ):
            tls.version()
    except ssl.SSLCertVerificationError as error:
        return f"verify: {error.verify_message}"
    except (ssl.SSLError, OSError) as error:
        return f"handshake: {error}"
    return None


# --------------------------------------------------------------------------- openssl x509


def openssl_hostname_match(leaf_pem: str, name: str) -> bool:
    """``openssl x509 -checkhost`` (or ``-checkip`` for an address) on the served leaf."""
    import ipaddress

    try:
        ipaddress.ip_address(name)
        option = "-checkip"
    except ValueError:
        option = "-checkhost"
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(leaf_pem)
    try:
        output = subprocess.run(
            ["openssl", "x509", "-noout", "-in", handle.name, option, name],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "LC_ALL": "C"},
        ).stdout
    finally:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
    if " does match certificate" in output:
        return True
    if " does NOT match certificate" in output:
        return False
    raise RuntimeError(f"unexpected openssl x509 output: {output!r}")
