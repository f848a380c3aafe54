"""Named malformed inputs, kept as regression cases: each ends in a typed error or the
parser's documented result, never in another exception.

Policies, inventories and target URIs go through the real loaders and the real check
families; TLS records through the ServerHello/record reader a hostile server talks to;
nmap XML through the reader of what the local nmap prints. The spine, tls, ports and aws
tests hold more cases of each kind; these are the ones they did not cover.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import InventoryError, ObservationError, PolicyError, TargetError
from audit.inventory import load_inventory, parse_target
from audit.models import Reason
from audit.policy import load_policy
from audit.registry import Families
from checks.ports.facts import parse_report
from checks.tls import wire

# --- policies ---------------------------------------------------------------------------

RULE = """\
  - id: HARD-TEST-001
    title: A rule
    resource: tls.endpoint
    expect: {key: port, op: eq, value: 443}
    severity: high
    remediation: Fix it.
"""
HEAD = "policy: hard\ntitle: T\nrules:\n"
LAUGHS = (
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
)

MALFORMED_POLICIES: dict[str, tuple[str, str]] = {
    "rules-is-a-mapping": (HEAD.replace("rules:\n", "rules: {a: 1}\n"), "rules"),
    "expect-is-a-string": (
        HEAD + RULE.replace("{key: port, op: eq, value: 443}", "port"),
        "expect",
    ),
    "each-without-expect": (
        HEAD + RULE.replace("{key: port, op: eq, value: 443}", "{each: {key: protocols}}"),
        "expect",
    ),
    "not-given-a-list": (
        HEAD + RULE.replace("{key: port, op: eq, value: 443}", "{not: [{key: a, op: exists}]}"),
        "expect",
    ),
    "two-combinators-in-one": (
        HEAD
        + RULE.replace(
            "{key: port, op: eq, value: 443}",
            "{all: [{key: a, op: exists}], any: [{key: a, op: exists}]}",
        ),
        "expect",
    ),
    "control-is-a-mapping": (HEAD + RULE + "    controls: {nis2: {a: 1}}\n", "controls"),
    "python-name-tag": ("policy: !!python/name:os.system\ntitle: T\n", "invalid"),
    "python-object-new-tag": (
        "policy: hard\ntitle: !!python/object/new:subprocess.Popen [[id]]\n",
        "invalid",
    ),
    "alias-bomb": (LAUGHS, "too large"),
    "nested-too-deeply": ("policy: " + "[" * 200 + "]" * 200 + "\n", "nested too deeply"),
    "not-utf8": ("policy: caf\udce9\n", "cannot read file"),
    "tab-indentation": ("policy: hard\nrules:\n\t- id: X\n", "invalid YAML"),
    "key-is-a-list": ("? [a, b]\n: 1\n", "expected a scalar"),
    "jmespath-function-unknown": (
        HEAD + RULE.replace("key: port", "key: 'read_file(`\"/etc/passwd\"`)'"),
        "unknown function: read_file()",
    ),
    "jmespath-function-misspelt": (
        HEAD + RULE.replace("key: port", "key: 'lenght(certificate.san)'"),
        "unknown function: lenght()",
    ),
    "jmespath-wrong-argument-count": (
        HEAD + RULE.replace("key: port", "key: 'starts_with(host)'"),
        "takes 2 argument(s), got 1",
    ),
    "param-default-missing": (
        "policy: hard\ntitle: T\nparams: {p: {description: x}}\nrules:\n"
        + RULE.replace("value: 443", "param: p"),
        "params.p",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_POLICIES))
def test_malformed_policy_is_a_policy_error(case: str, tmp_path: Path, families: Families) -> None:
    # Given a hostile or broken policy file
    text, fragment = MALFORMED_POLICIES[case]
    path = tmp_path / "hard.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    # When it is loaded, then it is refused whole with one line naming the file
    with pytest.raises(PolicyError) as refused:
        load_policy(path, families.resource_types())
    message = str(refused.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert fragment in message, message


# --- inventories ------------------------------------------------------------------------

MALFORMED_INVENTORIES: dict[str, tuple[str, str]] = {
    "scope-is-a-list": ("scope: [127.0.0.1]\n", "scope"),
    "systems-is-a-mapping": ("systems: {a: 1}\n", "systems"),
    "target-is-a-number": ("systems:\n  - name: A\n    targets: [443]\n", "targets[0]"),
    "target-with-newline": (
        'systems:\n  - name: A\n    targets: ["tls://a\\n--script=x"]\n',
        "control characters",
    ),
    "target-option-like": (
        "systems:\n  - name: A\n    targets: ['ports://-iL/etc/passwd']\n",
        "'-'",
    ),
    "target-shell-metachar": (
        "systems:\n  - name: A\n    targets: ['tls://$(reboot)']\n",
        "not a valid host",
    ),
    "target-nmap-range-as-name": (
        "systems:\n  - name: A\n    targets: ['ports://10.0.0-255.1']\n",
        "not a valid host",
    ),
    "numeric-scope-domain": ("scope: {domains: ['1']}\n", "not a domain"),
    "aws-settings-not-a-mapping": ("aws: [1, 2]\n", "aws:"),
    "python-object-tag": ("executor: !!python/object/apply:os.system [id]\n", "invalid"),
    "sla-unknown-severity": ("sla: {apocalyptic: 3}\n", "sla"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_INVENTORIES))
def test_malformed_inventory_is_an_inventory_error(
    case: str, tmp_path: Path, families: Families
) -> None:
    text, fragment = MALFORMED_INVENTORIES[case]
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError) as refused:
        load_inventory(path, families)
    message = str(refused.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert fragment in message, message


# --- target URIs ------------------------------------------------------------------------

MALFORMED_URIS: dict[str, tuple[str, str]] = {
    "newline-then-option": ("tls://host\n--script=x", "control characters"),
    "nul-byte": ("tls://a\x00b", "control characters"),
    "space-then-command": ("tls://a;rm -rf", "control characters"),
    "arabic-indic-port-digits": ("tls://host:\u0661\u0662\u0663", "port is not a number"),
    "fullwidth-dot": ("tls://exa\uff0emple.org", "not a valid host"),
    "percent-encoded-host": ("tls://%6c%6fcalhost", "not a valid host"),
    "option-like-host": ("tls://--script=x", "not a valid host"),
    "command-substitution": ("tls://$(id)", "not a valid host"),
    "no-scheme": ("localhost:443", "not a URI"),
    "unknown-scheme": ("gopher://x", "unknown scheme"),
    "smtp-with-path": ("smtp://mail/path", "unexpected path"),
    "unclosed-ipv6-bracket": ("tls://[::1", "IPv6"),
    "bracketed-ipv4": ("tls://[127.0.0.1]", "IPv4"),
    "port-list-with-command": ("ports://127.0.0.1?ports=22;id", "not a port"),
    "sni-option-like": ("tls://localhost?sni=--x", "not a host name"),
    "endpoint-port-with-command": ("aws://?endpoint=http://127.0.0.1:1;id", "port"),
    "region-path-traversal": ("aws://?regions=eu-west-3,../../", "region name"),
    "label-too-long": ("tls://" + "a" * 64 + ".org", "not a valid host"),
    "nmap-range-as-name": ("ports://127.0.0.1-5", "not a valid host"),
    "nmap-octet-range-as-name": ("ports://10.0.0-255.1", "not a valid host"),
    "short-ipv4-as-name": ("tls://127.1", "not a valid host"),
    "non-ascii-host": ("tls://\u00e9xample.fr", "not a valid host"),
    "http-port-out-of-range": ("tls://localhost?http_port=65536", "http_port"),
    "comma-separated-hosts": ("ports://127.0.0.1,127.0.0.2", "not a valid host"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_URIS))
def test_malformed_target_is_a_target_error(case: str, families: Families) -> None:
    raw, fragment = MALFORMED_URIS[case]
    with pytest.raises(TargetError) as refused:
        parse_target(raw, families)
    assert fragment in str(refused.value)
    assert "\n" not in str(refused.value).replace(repr(raw), "")


# --- TLS records ------------------------------------------------------------------------


def handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def record(content_type: int, fragment: bytes) -> bytes:
    return bytes([content_type, 3, 3]) + len(fragment).to_bytes(2, "big") + fragment


def server_hello(suite: bytes = b"\xc0\x2f", extensions: bytes = b"") -> bytes:
    return handshake(2, b"\x03\x03" + b"\x11" * 32 + b"\x00" + suite + b"\x00" + extensions)


DONE = handshake(14, b"")
NOT_TLS = "not_tls"
WAITING = "waiting"

# case: (bytes from the server, want the certificate, NOT_TLS / WAITING / reply kind)
MALFORMED_RECORDS: dict[str, tuple[bytes, bool, str]] = {
    "hello-done-without-server-hello": (record(22, DONE), True, NOT_TLS),
    "server-hello-too-short": (record(22, handshake(2, b"\x03\x03")), False, NOT_TLS),
    "session-id-longer-than-message": (
        record(22, handshake(2, b"\x03\x03" + b"\x00" * 32 + b"\xff")),
        False,
        NOT_TLS,
    ),
    "extension-block-length-mismatch": (
        record(22, server_hello(extensions=b"\x00\x10\x00\x00")),
        False,
        NOT_TLS,
    ),
    "extension-longer-than-block": (
        record(22, server_hello(extensions=b"\x00\x04\xff\x01\x00\x09")),
        False,
        NOT_TLS,
    ),
    "unregistered-suite": (record(22, server_hello(suite=b"\xff\xfe")), False, "hello"),
    "supported-versions-odd-length": (
        record(22, server_hello(extensions=b"\x00\x05\x00\x2b\x00\x01\x04")),
        False,
        "hello",
    ),
    "certificate-message-garbage": (
        record(22, server_hello() + handshake(11, b"\x00\x00\x05hello") + DONE),
        True,
        "hello",
    ),
    "dh-prime-length-overflow": (
        record(22, server_hello(b"\x00\x9e") + handshake(12, b"\xff\xff\x01\x02") + DONE),
        True,
        "hello",
    ),
    "ecdhe-key-exchange-truncated": (
        record(22, server_hello() + handshake(12, b"\x03") + DONE),
        True,
        "hello",
    ),
    "handshake-length-16-mib": (record(22, b"\x02\xff\xff\xff"), False, WAITING),
    "empty-alert": (record(21, b""), False, "alert"),
    "one-byte-alert": (record(21, b"\x02"), False, "alert"),
    "unknown-content-type": (record(0x18, b"\x00"), False, NOT_TLS),
    "record-major-version-2": (b"\x16\x02\x00\x00\x01\x00", False, NOT_TLS),
    "record-longer-than-tls-allows": (b"\x16\x03\x03\xff\xff", False, NOT_TLS),
    "http-answer": (b"HTTP/1.1 400 Bad Request\r\n\r\n", False, NOT_TLS),
    "ssh-banner": (b"SSH-2.0-OpenSSH_9.6\r\n", False, NOT_TLS),
    "binary-noise": (b"\x00\x01\x02\x03\xff\xfe\xfd", False, NOT_TLS),
    "flight-over-the-byte-limit": (
        record(22, b"\x0b\x00\x3f\xf0" + b"\x00" * 0x3FEC)[:4000] + b"\x00" * 200,
        False,
        NOT_TLS,
    ),
    "record-header-cut": (b"\x16\x03", False, WAITING),
    "application-data-before-hello": (record(0x17, b"\x00" * 8), False, WAITING),
    "change-cipher-spec-before-hello": (record(0x14, b"\x01"), False, WAITING),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_RECORDS))
def test_malformed_tls_record(case: str) -> None:
    # Given what a hostile server sends back to a ClientHello
    data, want_certificate, expected = MALFORMED_RECORDS[case]
    reader = wire.FlightReader(
        wire.Hello("TLSv1.2", (0xC02F,), want_certificate=want_certificate), max_bytes=4096
    )
    # When the reader is fed it, byte by byte as a slow server would send it
    try:
        for index in range(len(data)):
            reader.feed(data[index : index + 1])
            if reader.done:
                break
    except wire.NotTls as refused:
        outcome = NOT_TLS
        assert str(refused)
    else:
        outcome = reader.reply.kind if reader.reply else WAITING
    # Then it decides, waits for more, or says "not TLS": nothing else
    assert outcome == expected


MALFORMED_SSLV2: dict[str, tuple[bytes, str]] = {
    "sslv2-null-header": (b"\x00\x00\x00", NOT_TLS),
    "sslv2-header-cut": (b"\x80", WAITING),
    "sslv2-error-message": (b"\x80\x02\x05\x00", "alert"),
    "sslv2-answered-with-tls-alert": (b"\x15\x03\x00", "alert"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_SSLV2))
def test_malformed_sslv2_answer(case: str) -> None:
    data, expected = MALFORMED_SSLV2[case]
    reader = wire.FlightReader(wire.Hello("SSLv2", ()))
    try:
        reader.feed(data)
    except wire.NotTls:
        outcome = NOT_TLS
    else:
        outcome = reader.reply.kind if reader.reply else WAITING
    assert outcome == expected


# --- nmap XML ---------------------------------------------------------------------------

XML = '<?xml version="1.0"?>'
ENTITIES = "".join(
    f'<!ENTITY {name} "{("&" + prev + ";") * 10 if prev else "a" * 10}">'
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)
)
HOST = '<host><status state="up"/><address addr="127.0.0.1" addrtype="ipv4"/>{}</host>'
NUL_PRODUCT = (
    '<ports><port protocol="tcp" portid="22"><state state="open"/>'
    '<service product="&#0;"/></port></ports>'
)
NAMED_PORT = '<ports><port protocol="tcp" portid="ssh"><state state="open"/></port></ports>'

# case: (what nmap printed, "bug" when it is refused as unreadable, else hosts read)
MALFORMED_XML: dict[str, tuple[str, str | int]] = {
    "entity-expansion-bomb": (
        f'{XML}<!DOCTYPE n [{ENTITIES}]><nmaprun><host><address addr="&h;"/></host></nmaprun>',
        "bug",
    ),
    "external-entity": (
        f'{XML}<!DOCTYPE n [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<nmaprun><host><address addr="&x;" addrtype="ipv4"/></host></nmaprun>',
        "bug",
    ),
    "cut-mid-attribute": (f'{XML}<nmaprun><host><address addr="1', "bug"),
    "invalid-character-reference": (
        XML + "<nmaprun>" + HOST.format(NUL_PRODUCT) + "</nmaprun>",
        "bug",
    ),
    "two-documents": ("<nmaprun/><nmaprun/>", "bug"),
    "no-runstats": (XML + "<nmaprun>" + HOST.format("") + "</nmaprun>", 1),
    "port-id-not-a-number": (XML + "<nmaprun>" + HOST.format(NAMED_PORT) + "</nmaprun>", 1),
    "counts-not-numbers": (
        f'{XML}<nmaprun><runstats><hosts up="x" total="-"/></runstats></nmaprun>',
        0,
    ),
    "mac-address-only": (
        f'{XML}<nmaprun><host><address addr="00:11:22:33:44:55" addrtype="mac"/></host></nmaprun>',
        1,
    ),
    "byte-order-mark": ("\ufeff" + XML + "<nmaprun/>", 0),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_XML))
def test_malformed_nmap_xml(case: str) -> None:
    xml, expected = MALFORMED_XML[case]
    if expected == "bug":
        with pytest.raises(ObservationError) as refused:
            parse_report(xml)
        assert refused.value.reason is Reason.BUG
        assert "root:" not in str(refused.value)  # no file content ever read
        return
    assert len(parse_report(xml).hosts) == expected


def test_there_are_at_least_fifty_named_cases() -> None:
    named = (
        MALFORMED_POLICIES,
        MALFORMED_INVENTORIES,
        MALFORMED_URIS,
        MALFORMED_RECORDS,
        MALFORMED_SSLV2,
        MALFORMED_XML,
    )
    assert sum(len(cases) for cases in named) >= 50
