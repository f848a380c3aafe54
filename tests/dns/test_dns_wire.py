"""The lean wire reader against dnspython's, on NSD's real answers and on hostile bytes.

The plain questions (A, AAAA, TXT, MX, NS, CNAME, PTR, SOA) are read by :mod:`checks.dns.wire`;
everything else, and anything unusual, by dnspython. Facts must not depend on which
reader read an answer: every answer here is read both ways and must come out the same.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from fakes import Served

from checks.dns import wire
from checks.dns.client import Answer, DnsClient, DnsSession, _parsed, _reply
from checks.dns.collect import _soa
from checks.dns.lab import NsdServer, Zone, sign, zone_text

pytestmark = pytest.mark.skipif(
    __import__("shutil").which("nsd") is None, reason="nsd is not installed"
)

RECORDS = [
    '@ IN TXT "v=spf1 " "include:a.wire.test" " -all"',
    '@ IN TXT "second"',
    "@ IN MX 10 mx.wire.test.",
    "@ IN MX 20 MX2.Wire.Test.",
    "@ IN MX 30 we\\.ird.wire.test.",
    "mx IN A 127.0.0.1",
    "mx IN A 192.0.2.7",
    "mx IN AAAA 2001:db8::1",
    "mx IN AAAA ::ffff:192.0.2.1",
    "alias IN CNAME target",
    'target IN TXT "hello"',
    'quoted IN TXT "a b" "\\"q\\"" "semi;colon"',
    'utf IN TXT "caf\\195\\169" "\\255"',
    'empty IN TXT ""',
    "ptr IN PTR mx.wire.test.",
    "sub IN NS ns1.wire.test.",
    "star IN MX 10 *.wire.test.",
    '@ IN CAA 0 issue "ca.example"',
    *[f'big IN TXT "{i:03d}{"x" * 200}"' for i in range(12)],
    "*.burst IN TXT " + " ".join(f'"{c * 250}"' for c in "abc"),
]
QUESTIONS = [
    ("wire.test", "TXT"),
    ("wire.test", "MX"),
    ("wire.test", "NS"),
    ("wire.test", "A"),
    ("mx.wire.test", "A"),
    ("mx.wire.test", "AAAA"),
    ("alias.wire.test", "TXT"),
    ("alias.wire.test", "CNAME"),
    ("quoted.wire.test", "TXT"),
    ("utf.wire.test", "TXT"),
    ("empty.wire.test", "TXT"),
    ("ptr.wire.test", "PTR"),
    ("sub.wire.test", "NS"),
    ("star.wire.test", "MX"),
    ("nowhere.wire.test", "TXT"),
    ("mx.wire.test", "TXT"),
    ("big.wire.test", "TXT"),
    ("wire.test", "SOA"),
    ("wire.test", "CAA"),
    ("wire.test", "DS"),
    ("wire.test", "DNSKEY"),
    ("nowhere.wire.test", "CAA"),
    ("mx.wire.test", "NSEC3PARAM"),
    ("mx.wire.test", "TLSA"),
    ("inside.wire.test", "SOA"),
    ("signed.test", "SOA"),
    ("SIGNED.test", "SOA"),
    ("signed.test", "TXT"),
    ("signed.test", "MX"),
    ("www.signed.test", "A"),
    ("nowhere.signed.test", "SOA"),
]
SIGNED = ['@ IN TXT "v=spf1 -all"', "@ IN MX 10 mx.signed.test.", "www IN A 127.0.0.1"]


@pytest.fixture(scope="module")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsdServer]:
    zone = Zone("wire.test", zone_text("wire.test", RECORDS, ns={"ns1.wire.test.": "127.0.0.1"}))
    if __import__("shutil").which("ldns-signzone") is None:
        pytest.skip("ldnsutils is not installed")
    text = zone_text("signed.test", SIGNED, ns={"ns1.signed.test.": "127.0.0.1"})
    signed, _ = sign(tmp_path_factory.mktemp("keys"), "signed.test", text)
    zones = [zone, Zone("signed.test", signed)]
    with NsdServer(zones, addresses=("127.0.0.1",)) as server:
        yield server


def rdtype_code(rdtype: str) -> int:
    return int(dns.rdatatype.from_text(rdtype))


def raw_answer(port: int, name: str, rdtype: str, payload: int = 4096) -> bytes:
    """NSD's answer to one question, as bytes (a plain socket, no reader involved)."""
    code = rdtype_code(rdtype)
    _, message, _ = wire.query(wire.encode_name(name), code, 0, payload)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(message, ("127.0.0.1", port))
        return sock.recv(65535)


@pytest.mark.parametrize(("name", "rdtype"), QUESTIONS)
def test_both_readers_agree_on_nsd_answers(nsd: NsdServer, name: str, rdtype: str) -> None:
    data = raw_answer(nsd.port, name, rdtype)
    code = rdtype_code(rdtype)
    lean, lean_ttl = _reply(name, rdtype, code, data, "ns")
    full, full_ttl = _parsed(name, rdtype, code, data, "ns")
    assert (lean.rcode, lean.records, lean.flags, lean.error) == (
        full.rcode,
        full.records,
        full.flags,
        full.error,
    )
    assert lean_ttl == full_ttl
    # and what is read from them later: the signatures, and a zone's SOA facts
    assert lean.rrsigs == full.rrsigs
    if rdtype == "SOA":
        assert _soa(lean, name) == _soa(full, name)


def test_signatures_are_read_only_where_there_are_some(nsd: NsdServer) -> None:
    # Given a signed answer, its RRSIG is read (by dnspython) from the bytes kept
    signed, _ = _reply("signed.test", "TXT", 16, raw_answer(nsd.port, "signed.test", "TXT"), "ns")
    assert signed.parsed is None and signed.signed is True
    assert [int(s.type_covered) for s in signed.rrsigs] == [16]
    # while an unsigned one says at once that no signature covers it: no message is built
    plain, _ = _reply("wire.test", "TXT", 16, raw_answer(nsd.port, "wire.test", "TXT"), "ns")
    assert plain.records and plain.signed is False
    assert plain.rrsigs == () and "message" not in vars(plain)


def test_the_lean_reader_reads_the_plain_answers_itself(nsd: NsdServer) -> None:
    # Given plain answers, no dnspython message is built for them (that is the point)
    for name, rdtype in [("wire.test", "TXT"), ("mx.wire.test", "AAAA"), ("wire.test", "NS")]:
        data = raw_answer(nsd.port, name, rdtype)
        answer, _ = _reply(name, rdtype, wire.TYPES[rdtype], data, "ns")
        assert answer.parsed is None and answer.records
    txt = _reply("wire.test", "TXT", 16, raw_answer(nsd.port, "wire.test", "TXT"), "ns")[0]
    assert txt.records == ("v=spf1 include:a.wire.test -all", "second")
    # while a name that needs escaping sends the whole answer to dnspython
    mx = raw_answer(nsd.port, "wire.test", "MX")
    with pytest.raises(wire.Unusual):
        wire.read(mx, 15, 100)
    answer, _ = _reply("wire.test", "MX", 15, mx, "ns")
    assert "30 we\\.ird.wire.test." in answer.records and answer.parsed is not None
    assert "20 mx2.wire.test." in answer.records
    soa, _ = _reply("wire.test", "SOA", 6, raw_answer(nsd.port, "wire.test", "SOA"), "ns")
    assert soa.parsed is None and soa.records[0].startswith("ns1.wire.test. ")
    # a negative answer of any type is read plainly; a CAA record, by dnspython
    for name, rdtype in [("wire.test", "DS"), ("nowhere.wire.test", "CAA")]:
        data = raw_answer(nsd.port, name, rdtype)
        answer, _ = _reply(name, rdtype, rdtype_code(rdtype), data, "ns")
        assert answer.parsed is None and answer.records == () and answer.rrsigs == ()
    caa, _ = _reply("wire.test", "CAA", 257, raw_answer(nsd.port, "wire.test", "CAA"), "ns")
    assert caa.records == ('0 issue "ca.example"',) and caa.parsed is not None


def response_to(question: str, rdtype: str, rrsets: list[dns.rrset.RRset]) -> bytes:
    query = dns.message.make_query(question, rdtype, use_edns=0, want_dnssec=True)
    response = dns.message.make_response(query)
    response.answer.extend(rrsets)
    return bytes(response.to_wire())


def test_hostile_bytes_never_read_differently_nor_crash() -> None:
    good = response_to(
        "x.test.", "MX", [dns.rrset.from_text("x.test.", 60, "IN", "MX", "10 mx.x.test.")]
    )
    header = good[:12]
    question = wire.encode_name("x.test") + b"\x00\x0f\x00\x01"
    loop_pointer = b"\xc0\x0c"  # the record's owner points at itself
    hostile = {
        "pointer loop": header[:6]
        + b"\x00\x01\x00\x00\x00\x00"
        + question
        + b"\xc0\x1d"
        + b"\x00\x0f\x00\x01\x00\x00\x00\x3c\x00\x04\x00\x0a"
        + loop_pointer,
        "truncated record": good[:-3],
        "record past the end": good[:-1] + b"",
        "label too long": header[:4] + b"\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x50" + b"a" * 80,
        "too short": b"\x00\x01\x81",
    }
    for why, data in hostile.items():
        answer, ttl = _reply("x.test", "MX", 15, data, "ns")
        full, _ = _parsed("x.test", "MX", 15, data, "ns")
        # whatever dnspython makes of it, the lean path says the same (here: no answer)
        assert (answer.known, answer.records) == (full.known, full.records), why
        if not answer.known:
            assert answer.error is not None and ttl is None, why


def soa_rrset(owner: str, rdata: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, 60, "IN", "SOA", rdata)


def soa_bytes(numbers: bytes) -> bytes:
    """An answer to ``x.test SOA`` whose record ends in ``numbers``, written by hand."""
    question = wire.encode_name("x.test") + b"\x00\x06\x00\x01"
    rdata = wire.encode_name("ns.x.test") + wire.encode_name("h.x.test") + numbers
    record = b"\xc0\x0c" + struct.pack("!HHIH", 6, 1, 60, len(rdata)) + rdata
    return struct.pack("!HHHHHH", 0, 0x8180, 1, 1, 0, 0) + question + record


def test_an_unusual_soa_is_read_as_dnspython_reads_it() -> None:
    plain = "NS1.X.test. Host.X.test. 7 3600 900 604800 300"
    other = response_to("x.test.", "SOA", [soa_rrset("other.test.", plain)])
    cases = {
        "root names": response_to("x.test.", "SOA", [soa_rrset("x.test.", ". . 1 2 3 4 5")]),
        "names in capitals": response_to("x.test.", "SOA", [soa_rrset("X.Test.", plain)]),
        "two records": response_to(
            "x.test.", "SOA", [soa_rrset("x.test.", plain), soa_rrset("x.test.", ". . 9 9 9 9 9")]
        ),
        # an SOA owned by another name than the one asked goes to dnspython
        "another owner": other,
        "an escaped name": response_to(
            "x.test.", "SOA", [soa_rrset("x.test.", r"a\.b. c. 1 2 3 4 5")]
        ),
        "one byte too many": soa_bytes(struct.pack("!IIIII", 1, 2, 3, 4, 5) + b"\x00"),
        "one byte short": soa_bytes(struct.pack("!IIII", 1, 2, 3, 4) + b"\x00\x00\x00"),
    }
    for why, data in cases.items():
        lean, _ = _reply("x.test", "SOA", 6, data, "ns")
        full, _ = _parsed("x.test", "SOA", 6, data, "ns")
        assert (lean.known, lean.records) == (full.known, full.records), why
        if lean.known:
            assert _soa(lean, "x.test") == _soa(full, "x.test"), why
    lean, _ = _reply("x.test", "SOA", 6, cases["names in capitals"], "ns")
    assert lean.parsed is None
    assert _soa(lean, "x.test") == (
        "x.test",
        {"mname": "ns1.x.test", "rname": "host.x.test", "serial": 7, "refresh": 3600}
        | {"retry": 900, "expire": 604800, "minimum": 300},
    )
    for unusual in ("another owner", "an escaped name", "two records"):
        with pytest.raises(wire.Unusual):
            wire.read(cases[unusual], 6, 100)
    # dnspython keeps a name's last CNAME as it keeps its last SOA: so does the lean path
    cnames = [dns.rrset.from_text("x.test.", 60, "IN", "CNAME", t) for t in ("a.test.", "b.test.")]
    data = response_to("x.test.", "CNAME", cnames)
    assert _reply("x.test", "CNAME", 5, data, "ns")[0].records == ("b.test.",)


def test_an_answer_that_does_not_echo_the_question_is_not_ours() -> None:
    qid, message, question = wire.query(wire.encode_name("x.test"), 16, wire.RD, 1232)
    reply = bytearray(message)
    reply[2] |= 0x80
    assert wire.echoes(bytes(reply), qid, question)
    upper = bytes(reply).replace(b"\x01x\x04test", b"\x01X\x04TEST")
    assert wire.echoes(upper, qid, question)  # 0x20 case is still our question
    assert not wire.echoes(bytes(reply), (qid + 1) & 0xFFFF, question)  # another ID
    other = bytes(reply).replace(b"\x01x\x04test", b"\x01y\x04test")
    assert not wire.echoes(other, qid, question)  # another name
    asked = bytearray(message)  # a query, not a response (QR clear)
    assert not wire.echoes(bytes(asked), qid, question)


class SpoofingServer(Served):
    """Answers every question twice: first a forged answer to another question with the
    same ID (what an off-path spoofer hopes to land), then the true answer. With
    ``lossy``, it ignores the first copy of each question (a datagram lost on the way)
    and forges nothing. With ``strings``, the true answer holds that many 255-byte TXT
    strings, in one datagram whatever the size the question advertised."""

    def __init__(self, *, lossy: bool = False, strings: int = 0, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.questions = 0
        self.lossy = lossy
        self.strings = strings
        self.seen: set[bytes] = set()
        self.start()

    def serve_one(self) -> None:
        data, peer = self.sock.recvfrom(4096)
        self.questions += 1
        query = dns.message.from_wire(data)
        name = query.question[0].name
        if self.lossy and data not in self.seen:
            self.seen.add(data)
            return
        if not self.lossy:
            self._forge(query, peer)
        true = dns.message.make_response(query)
        text = " ".join(['"true"'] + [f'"{"x" * 255}"'] * self.strings)
        true.answer.append(dns.rrset.from_text(name, 300, "IN", "TXT", text))
        self.sock.sendto(true.to_wire(max_size=65535), peer)

    def _forge(self, query: dns.message.Message, peer: tuple[str, int]) -> None:
        forged_query = dns.message.make_query("evil.test.", "TXT")
        forged_query.id = query.id
        forged = dns.message.make_response(forged_query)
        forged.answer.append(dns.rrset.from_text("evil.test.", 60, "IN", "TXT", '"evil"'))
        self.sock.sendto(forged.to_wire(), peer)


def test_a_forged_answer_is_dropped_and_a_repeated_question_asked_once() -> None:
    server = SpoofingServer()
    try:
        client = DnsClient([("127.0.0.1", server.port)], 2.0)

        async def many() -> list[tuple[str, ...]]:
            answers = await asyncio.gather(*(client.query("a.test", "TXT") for _ in range(20)))
            again = await client.query("A.TEST.", "TXT")
            return [a.records for a in [*answers, again]]

        records = asyncio.run(many())
    finally:
        server.close()
    assert set(records) == {("true",)}
    # twenty askers at once and one later: one question on the wire (in flight, then cached)
    assert server.questions == 1


def test_an_ipv6_resolver_is_asked_over_ipv6() -> None:
    server = SpoofingServer(host="::1")
    try:
        answer = asyncio.run(DnsClient([("::1", server.port)], 2.0).query("a.test", "TXT"))
    finally:
        server.close()
    assert answer.known and answer.records == ("true",) and answer.server == f"::1:{server.port}"


def test_a_lost_question_is_sent_again_within_its_timeout() -> None:
    server = SpoofingServer(lossy=True)
    try:
        answer = asyncio.run(DnsClient([("127.0.0.1", server.port)], 3.0).query("a.test", "TXT"))
    finally:
        server.close()
    # the first datagram was lost; the same question went again and was answered
    assert answer.known and answer.records == ("true",)
    assert server.questions == 2


def test_an_answer_past_the_advertised_size_comes_whole() -> None:
    """A server may answer over UDP with more than the 1,232 bytes the question offered
    (a bigger buffer than ours, or a hostile one): the datagram is read whole, and its
    records are what dnspython reads in it, not a cut-off copy."""
    server = SpoofingServer(strings=200)  # ~51 KB in one datagram
    try:
        answer = asyncio.run(DnsClient([("127.0.0.1", server.port)], 3.0).query("a.test", "TXT"))
    finally:
        server.close()
    assert answer.known and answer.rcode == "NOERROR"
    assert answer.records == ("true" + "x" * 255 * 200,)


def test_a_burst_of_questions_at_one_server_loses_none(nsd: NsdServer) -> None:
    """A thousand distinct questions from many targets at once share one socket: the
    answers must not overflow its receive buffer (a lost answer is an unknown fact)."""
    session = DnsSession()
    # a timeout shorter than RESEND_S: an answer lost here is not saved by a second copy
    clients = [DnsClient([("127.0.0.1", nsd.port)], 0.9, session=session) for _ in range(60)]

    async def busy() -> None:
        # the loop held by other work (other targets' parsing, the GIL) while answers land
        for _ in range(3):
            await asyncio.sleep(0.01)
            time.sleep(0.2)

    async def burst() -> list[Answer]:
        questions = (
            client.query(f"n{i}-{j}.burst.wire.test", "TXT")
            for i, client in enumerate(clients)
            for j in range(30)
        )
        answers, _ = await asyncio.gather(asyncio.gather(*questions), busy())
        return answers

    answers = asyncio.run(burst())
    assert [a.error for a in answers if not a.known] == []
    assert {len(a.records[0]) for a in answers} == {750}


def test_the_session_keeps_answers_for_their_ttl_only(nsd: NsdServer) -> None:
    session = DnsSession()
    client = DnsClient([("127.0.0.1", nsd.port)], 2.0, session=session)
    first = asyncio.run(client.query("wire.test", "TXT"))
    key = (("127.0.0.1", nsd.port), "wire.test", "TXT", True)
    assert session.cached(key) is first
    session.answers[key] = (0.0, first)  # its TTL has run out
    assert session.cached(key) is None and key not in session.answers
    # an answer without TTL (no record at all) and an error are not kept
    session.keep(("k",), first, 0)
    assert ("k",) not in session.answers


def test_flags_and_rcode_read_like_dnspython() -> None:
    query = dns.message.make_query("x.test.", "TXT", use_edns=0, want_dnssec=True)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA | dns.flags.RA | dns.flags.AD
    response.set_rcode(dns.rcode.BADVERS)  # an extended rcode, in the OPT record
    data = bytes(response.to_wire())
    lean = wire.read(data, 16, 10)
    assert lean.rcode == response.rcode() == dns.rcode.BADVERS
    answer, _ = _reply("x.test", "TXT", 16, data, "ns")
    assert answer.rcode == "BADVERS" and set(answer.flags) == {"QR", "AA", "RD", "RA", "AD"}
