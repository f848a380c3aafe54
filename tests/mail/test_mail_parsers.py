"""The pure parts of the mail family, on unit data: record parsers and the SPF walk.

The SPF walk and the DMARC authorisation read DNS through an ``await query(name, type)``
function; here a table answers it, so every RFC case is one line. The same code against a
real authoritative server is in ``test_mail_lab.py``.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import TargetError
from checks.mail import dane, dkim, dmarc, mtasts, spf, targets


@dataclass(frozen=True)
class Reply:
    rcode: str | None
    records: tuple[str, ...] = ()
    error: str | None = None


class Table:
    """Answers from a dict ``(name, type) -> records``; other names are NXDOMAIN."""

    def __init__(self, data: dict[tuple[str, str], Any]) -> None:
        self.data = data
        self.asked: list[tuple[str, str]] = []

    async def query(self, name: str, rdtype: str) -> Reply:
        self.asked.append((name, rdtype))
        value = self.data.get((name, rdtype))
        if value == "timeout":
            return Reply(None, error="timeout after 2 s from 127.0.0.1:53")
        if value == "servfail":
            return Reply("SERVFAIL")
        if value is None:
            known = any(n == name for n, _ in self.data)
            return Reply("NOERROR" if known else "NXDOMAIN")
        return Reply("NOERROR", tuple(value))


def spf_of(data: dict[tuple[str, str], Any], domain: str = "d.test") -> dict[str, Any]:
    return asyncio.run(spf.check_domain(domain, Table(data).query))


# --- SPF --------------------------------------------------------------------------------


def test_spf_simple_record_counts_its_lookups() -> None:
    facts = spf_of(
        {
            ("d.test", "TXT"): ["v=spf1 mx a:web.d.test include:_spf.d.test -all"],
            ("d.test", "MX"): ["10 mx.d.test."],
            ("web.d.test", "A"): ["192.0.2.1"],
            ("_spf.d.test", "TXT"): ["v=spf1 ip4:192.0.2.0/24 ~all"],
        }
    )
    assert facts["present"] and facts["all"] == "-all"
    assert facts["lookups"] == 3 and facts["void_lookups"] == 0
    assert facts["errors"] == [] and facts["includes"] == ["_spf.d.test"]


def test_spf_absent_and_multiple_records() -> None:
    assert spf_of({("d.test", "TXT"): ["google-site-verification=x"]})["present"] is False
    facts = spf_of({("d.test", "TXT"): ["v=spf1 -all", "v=spf1 ~all"]})
    assert facts["present"] is False and "2 SPF records" in facts["errors"][0]


def test_spf_more_than_ten_lookups_is_an_error_with_the_count() -> None:
    includes = " ".join(f"include:i{n}.d.test" for n in range(6))
    data: dict[tuple[str, str], Any] = {("d.test", "TXT"): [f"v=spf1 {includes} -all"]}
    for n in range(6):
        data[(f"i{n}.d.test", "TXT")] = [f"v=spf1 a:h{n}.d.test ~all"]
        data[(f"h{n}.d.test", "A")] = ["192.0.2.1"]
    facts = spf_of(data)
    assert facts["lookups"] == 12
    assert any("above the limit of 10" in e for e in facts["errors"])


def test_spf_void_lookups_are_counted() -> None:
    facts = spf_of(
        {("d.test", "TXT"): ["v=spf1 a:gone1.d.test a:gone2.d.test exists:gone3.d.test -all"]}
    )
    assert facts["void_lookups"] == 3
    assert any("void lookups" in e for e in facts["errors"])


def test_spf_redirect_gives_the_all_and_counts() -> None:
    facts = spf_of(
        {
            ("d.test", "TXT"): ["v=spf1 redirect=_spf.other.test"],
            ("_spf.other.test", "TXT"): ["v=spf1 ip4:192.0.2.1 ~all"],
        }
    )
    assert facts["all"] == "~all" and facts["lookups"] == 1


def test_spf_redirect_is_ignored_after_all_and_terms_after_all_are_not_evaluated() -> None:
    facts = spf_of({("d.test", "TXT"): ["v=spf1 -all include:x.test redirect=y.test"]})
    assert facts["all"] == "-all" and facts["lookups"] == 0


def test_spf_include_loop_and_include_without_record() -> None:
    facts = spf_of(
        {
            ("d.test", "TXT"): ["v=spf1 include:a.test include:none.test -all"],
            ("a.test", "TXT"): ["v=spf1 include:d.test ~all"],
        }
    )
    assert any("loops back" in e for e in facts["errors"])
    assert any("include:none.test has no SPF record" in e for e in facts["errors"])


@pytest.mark.parametrize(
    ("record", "fault"),
    [
        ("v=spf1 ip4:300.1.1.1 -all", "not an IPv4 network"),
        ("v=spf1 ip6:192.0.2.1 -all", "not an IPv6 network"),
        ("v=spf1 foo:bar -all", "unknown term"),
        ("v=spf1 a/33 -all", "above 32"),
        ("v=spf1 include -all", "needs :domain"),
        ("v=spf1 redirect=a.test redirect=b.test", "more than once"),
    ],
)
def test_spf_syntax_errors(record: str, fault: str) -> None:
    facts = spf_of({("d.test", "TXT"): [record]})
    assert any(fault in e for e in facts["errors"]), facts["errors"]


def test_spf_macros_needing_the_sender_are_counted_not_queried() -> None:
    table = Table({("d.test", "TXT"): ["v=spf1 exists:%{i}._spf.%{d} -all"]})
    facts = asyncio.run(spf.check_domain("d.test", table.query))
    assert facts["lookups"] == 1 and table.asked == [("d.test", "TXT")]
    assert spf.expand("%{d2}.x.%{o}", "a.b.c.test") == "c.test.x.a.b.c.test"
    assert spf.expand("%{ir}.x", "d.test") is None


def test_spf_no_all_gives_null() -> None:
    assert spf_of({("d.test", "TXT"): ["v=spf1 ip4:192.0.2.1"]})["all"] is None


@pytest.mark.parametrize("failure", ["timeout", "servfail"])
def test_spf_unanswered_lookup_is_unknown_never_absent(failure: str) -> None:
    with pytest.raises(spf.SpfUnknown):
        spf_of({("d.test", "TXT"): failure})
    with pytest.raises(spf.SpfUnknown):
        spf_of({("d.test", "TXT"): ["v=spf1 include:i.test -all"], ("i.test", "TXT"): failure})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_spf_parser_never_raises(text: str) -> None:
    spf.parse("v=spf1 " + text)
    spf.expand(text, "d.test")


# --- DMARC ------------------------------------------------------------------------------


def dmarc_of(data: dict[tuple[str, str], Any], domain: str = "d.test") -> dict[str, Any]:
    return asyncio.run(dmarc.check_domain(domain, Table(data).query))


def test_dmarc_tags() -> None:
    facts = dmarc_of(
        {
            ("_dmarc.d.test", "TXT"): [
                "v=DMARC1; p=Reject; sp=none; pct=50; rua=mailto:a@d.test,mailto:b@rep.d.test!10m;"
                " ruf=mailto:f@d.test"
            ]
        }
    )
    assert facts["present"] and facts["policy"] == "reject"
    assert facts["subdomain_policy"] == "none" and facts["pct"] == 50
    assert facts["rua"] == ["mailto:a@d.test", "mailto:b@rep.d.test!10m"]
    assert facts["ruf"] == ["mailto:f@d.test"]
    assert facts["external_rua_authorized"] is True and facts["external_rua"] == []


def test_dmarc_defaults_and_faults() -> None:
    facts = dmarc_of({("_dmarc.d.test", "TXT"): ["v=DMARC1; p=quarantine"]})
    assert facts["subdomain_policy"] == "quarantine" and facts["pct"] == 100
    facts = dmarc_of({("_dmarc.d.test", "TXT"): ["v=DMARC1; p=bogus; pct=200"]})
    assert facts["policy"] is None and facts["pct"] is None and len(facts["errors"]) == 2
    facts = dmarc_of({("_dmarc.d.test", "TXT"): ["v=DMARC1; p=none", "v=DMARC1; p=reject"]})
    assert facts["present"] is False and "2 DMARC records" in facts["errors"][0]
    assert dmarc_of({})["present"] is False


def test_dmarc_external_rua_must_be_authorised() -> None:
    record = ["v=DMARC1; p=reject; rua=mailto:r@ok.example,mailto:r@no.example"]
    facts = dmarc_of(
        {
            ("_dmarc.d.test", "TXT"): record,
            ("d.test._report._dmarc.ok.example", "TXT"): ["v=DMARC1"],
        }
    )
    assert facts["external_rua_authorized"] is False
    assert facts["external_rua"] == [
        {"domain": "ok.example", "authorized": True},
        {"domain": "no.example", "authorized": False},
    ]


def test_dmarc_unanswered_is_unknown() -> None:
    with pytest.raises(dmarc.DmarcUnknown):
        dmarc_of({("_dmarc.d.test", "TXT"): "timeout"})


# --- DKIM -------------------------------------------------------------------------------


def _rsa_p(bits: int) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(65537, bits).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def test_dkim_key_types_and_sizes() -> None:
    assert dkim.key_facts((f"v=DKIM1; k=rsa; p={_rsa_p(1024)}",))["key_bits"] == 1024
    ed = base64.b64encode(bytes(32)).decode()
    facts = dkim.key_facts((f"v=DKIM1; k=ed25519; p={ed}",))
    assert (facts["key_type"], facts["key_bits"]) == ("Ed25519", 256)
    assert dkim.key_facts(("v=DKIM1; p=",))["revoked"] is True
    assert dkim.key_facts(("v=DKIM1; p=!!!",))["present"] is False
    assert dkim.key_facts(("unrelated",)) == {"present": False, "key_type": None, "key_bits": None}


def test_dkim_domainkey_node_by_rcode() -> None:
    p = _rsa_p(2048)
    facts = asyncio.run(
        dkim.check_domain(
            "d.test", ("s1", "s2"), Table({("s1._domainkey.d.test", "TXT"): [f"p={p}"]}).query
        )
    )
    assert facts["selectors"]["s1"]["key_bits"] == 2048
    assert facts["selectors"]["s2"]["present"] is False
    # the table answers NXDOMAIN for _domainkey.d.test: no node
    assert facts["domainkey_node"] is False


# --- MTA-STS, TLS-RPT, DANE -------------------------------------------------------------


def test_mta_sts_txt_and_policy() -> None:
    assert mtasts.txt_facts(("v=STSv1; id=20240101",))["present"] is True
    assert mtasts.txt_facts(("v=STSv1; id=bad-id!",))["present"] is False
    assert mtasts.txt_facts(("v=STSv1; id=a", "v=STSv1; id=b"))["present"] is False
    body = (
        "version: STSv1\r\nmode: enforce\r\nmx: mx.d.test\r\n"
        "mx: *.backup.test\r\nmax_age: 604800\r\n"
    )
    fields, error = mtasts.parse_policy(body)
    assert error is None and fields["mode"] == "enforce" and fields["max_age"] == 604800
    assert mtasts.covered(["mx.d.test", "a.backup.test"], fields["mx"])
    assert not mtasts.covered(["a.b.backup.test"], fields["mx"])
    assert mtasts.parse_policy("version: STSv1\nmode: enforce\nmax_age: 1\n")[1] == "no mx: line"
    assert mtasts.parse_policy("version: STSv1\nmode: x\n")[1] is not None


def test_tls_rpt() -> None:
    assert mtasts.tls_rpt_facts(("v=TLSRPTv1; rua=mailto:t@d.test",))["present"] is True
    assert mtasts.tls_rpt_facts(("v=TLSRPTv1;",))["present"] is False


@pytest.mark.parametrize(
    ("record", "usable"),
    [
        ("3 1 1 " + "ab" * 32, True),
        ("2 0 2 " + "ab" * 64, True),
        ("3 1 1 " + "ab" * 31, False),
        ("1 1 1 " + "ab" * 32, False),
        ("3 1 0 3082", True),
        ("3 9 1 " + "ab" * 32, False),
    ],
)
def test_dane_usable_records(record: str, usable: bool) -> None:
    assert dane.usable(record) is usable


def test_dane_counts_only_secure_hosts() -> None:
    hosts = [
        dane.host_facts("a", ("3 1 1 " + "ab" * 32,), "secure"),
        dane.host_facts("b", ("3 1 1 " + "ab" * 32,), "insecure"),
    ]
    assert dane.summary(hosts)["secure_mx"] == 1 and dane.summary(hosts)["usable_mx"] == 1
    assert hosts[1]["usable"] is False


# --- targets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "uri"),
    [
        ("mail://Example.TEST", "mail://example.test"),
        ("mail://example.test.?dkim=S2,s1,s1", "mail://example.test?dkim=s1,s2"),
        ("mail://example.test?smtp_port=2525&dkim=a", "mail://example.test?dkim=a&smtp_port=2525"),
    ],
)
def test_targets_are_canonical(raw: str, uri: str) -> None:
    assert targets.parse(urlsplit(raw), raw).uri == uri


@pytest.mark.parametrize(
    "raw",
    [
        "mail://192.0.2.1",
        "mail://example.test:25",
        "mail://localhost",
        "mail://example.test?dkim=bad/sel",
        "mail://example.test?smtp_port=0",
        "mail://example.test?foo=1",
        "mail://example.test/path",
    ],
)
def test_bad_targets_are_refused(raw: str) -> None:
    with pytest.raises(TargetError):
        targets.parse(urlsplit(raw), raw)


def test_inventory_selectors_per_system_and_domain() -> None:
    target = targets.parse(urlsplit("mail://d.test?dkim=a"), "mail://d.test?dkim=a")
    from dataclasses import replace

    target = replace(target, system="Messagerie")
    options = {"dkim": {"Messagerie": ["b"], "d.test": ["C"], "other.test": ["z"]}}
    targets.validate_options(options)
    assert targets.selectors(target, options) == ("a", "b", "c")
    for bad in ({"dkim": {"x": "s"}}, {"dkim": {"x": ["a b"]}}, {"selectors": {}}, []):
        with pytest.raises(ValueError):
            targets.validate_options(bad)


def _read(data: bytes, chunked: bool) -> bytes | None:
    async def run() -> bytes | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await mtasts._body(reader, chunked)

    return asyncio.run(run())


def test_policy_bodies_are_bounded_and_chunks_checked() -> None:
    assert _read(b"version: STSv1\n", False) == b"version: STSv1\n"
    assert _read(b"x" * (mtasts.MAX_BODY + 10), False) is None
    assert _read(b"5\r\nhello\r\n0\r\n\r\n", True) == b"hello"
    assert _read(b"FFFFFFFF\r\n", True) is None
    with pytest.raises(ValueError):
        _read(b"zz\r\nhello\r\n", True)
