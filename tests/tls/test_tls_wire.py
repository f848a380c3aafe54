"""The frozen tables and the hand-assembled messages agree with cryptoparser, byte for byte."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from checks.tls import lab, tables, wire

VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def test_tables_are_what_the_libraries_say_now() -> None:
    # an upgraded cryptodatahub that changes a suite or an extension fails here:
    # run `python -m checks.tls.wire` and review the diff
    built = wire.build_tables()
    assert built["SUITES"] == tables.SUITES
    assert built["EXTENSIONS"] == tables.EXTENSIONS
    assert built["SSLV2_HELLO"] == tables.SSLV2_HELLO


@pytest.mark.parametrize("version", VERSIONS)
def test_client_hello_matches_cryptoparser(version: str) -> None:
    groups = (0x11EC, 0x001D, 0x0100) if version == "TLSv1.3" else (0x001D, 0x0017, 0x0018)
    for name, fallback, compression in itertools.product(
        (None, "www.example.test"), (False, True), (False, True)
    ):
        hello = wire.Hello(
            version, wire.suites_for(version)[:60], name, groups, fallback, compression
        )
        ours = wire.client_hello(hello)
        random, session_id = ours[11:43], ours[44 : 44 + ours[43]]
        assert ours == wire.reference_client_hello(hello, random, session_id), hello


def test_heartbeat_extension_is_rfc_6520() -> None:
    plain = wire.Hello("TLSv1.2", (0xC02F,), "localhost")
    with_heartbeat = wire.Hello("TLSv1.2", (0xC02F,), "localhost", heartbeat=True)
    a, b = wire.client_hello(plain), wire.client_hello(with_heartbeat)
    assert b.endswith(b"\x00\x0f\x00\x01\x01") and len(b) == len(a) + 5


def test_groups_unknown_to_the_registry_are_still_offered() -> None:
    raw = wire.client_hello(wire.Hello("TLSv1.3", (0x1301,), None, (0x001F, 0x6399)))
    assert b"\x00\x0a\x00\x06\x00\x04\x00\x1f\x63\x99" in raw


def test_sslv2_hello_gets_a_fresh_challenge() -> None:
    a, b = wire.client_hello(wire.Hello("SSLv2", ())), wire.client_hello(wire.Hello("SSLv2", ()))
    assert a[:-16] == b[:-16] == tables.SSLV2_HELLO[:-16] and a[-16:] != b[-16:]


def test_certificate_message_is_read_like_cryptoparser(pki: lab.Pki) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    ders = [
        pki.issue(["a.test"]).cert.public_bytes(Encoding.DER),
        pki.intermediate.public_bytes(Encoding.DER),
    ]
    entries = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    body = len(entries).to_bytes(3, "big") + entries
    message = b"\x0b" + len(body).to_bytes(3, "big") + body
    assert wire.parse_certificates(message) == wire.reference_certificates(message) == tuple(ders)
    for broken in (message[:-1], message[:4] + b"\xff" + message[5:], message[:7], b"\x0b"):
        assert wire.parse_certificates(broken) == ()


def test_a_scan_never_imports_the_protocol_libraries() -> None:
    code = (
        "import sys; from checks.tls import collect, wire;"
        "wire.client_hello(wire.Hello('TLSv1.2', wire.suites_for('TLSv1.2'), 'x.test'));"
        "wire.suite_info(0xC02F); print(any(m.startswith(('cryptoparser', 'cryptodatahub'))"
        " for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
