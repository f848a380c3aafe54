"""The family as the registry sees it: documented facts, cheap import, robust parsing."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from checks.tls import FACTS, FAMILY, lab, wire

from .conftest import facts_of


def documented() -> set[str]:
    return {fact.name for fact in FACTS}


def test_family_shape() -> None:
    assert FAMILY.name == "tls"
    assert FAMILY.schemes == ("tls", "smtp", "imap", "pop3")
    assert FAMILY.resource_type_names() == ("tls.endpoint",)
    assert all(f.description and f.type for f in FACTS)


def test_every_fact_returned_is_documented(
    modern_server: lab.PythonTlsServer, pki: lab.Pki
) -> None:
    facts = facts_of(f"tls://localhost:{modern_server.port}?http_port=0", pki.ca_file)
    assert set(facts) <= documented()
    nested = {f"certificate.{name}" for name in facts["certificate"]}
    assert nested <= documented()
    assert {n for n in documented() if "." not in n} == set(facts)


def test_importing_the_family_is_cheap() -> None:
    code = (
        "import sys, checks.tls; heavy = ('cryptoparser', 'cryptodatahub', 'cryptography');"
        "print(any(m.startswith(heavy) for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_flight_reader_never_crashes_on_garbage(data: bytes) -> None:
    # given any bytes from a hostile server, the reader either decides, waits or says NotTls
    reader = wire.FlightReader(wire.Hello("TLSv1.2", (0x002F,)))
    try:
        reader.feed(data)
    except wire.NotTls:
        return
    assert reader.reply is None or reader.reply.kind in ("hello", "retry", "alert")


def test_flight_reader_bounds_what_it_buffers() -> None:
    reader = wire.FlightReader(wire.Hello("TLSv1.2", (0x002F,)), max_bytes=1000)
    record = b"\x16\x03\x03\x40\x00"  # a 16 KiB handshake record, arriving slowly
    reader.feed(record + b"\x00" * 900)
    try:
        reader.feed(b"\x00" * 200)
    except wire.NotTls as error:
        assert "larger" in str(error)
    else:
        raise AssertionError("the reader kept buffering")


def test_alert_is_read() -> None:
    reader = wire.FlightReader(wire.Hello("TLSv1.2", (0x002F,)))
    reader.feed(b"\x15\x03\x03\x00\x02\x02\x28")
    assert reader.reply == wire.Reply("alert", alert=40)


def test_suite_registry_knows_iana_names() -> None:
    info = wire.suite_info(0xC02F)
    assert info.name == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert info.forward_secret and info.aead and info.kex == "ECDHE"
    assert wire.suite_info(0x1301).tls13
    assert not wire.suite_info(0x002F).forward_secret
    assert wire.group_name(0x11EC) == "X25519MLKEM768"
