"""A lean DNS wire codec for the plain questions (A, AAAA, TXT, MX, NS, CNAME, PTR, SOA) and
for every answer that holds no record of the type asked (the negative answers that most
CAA, DS, DNSKEY and NSEC3PARAM questions of a scan get).

Why not dnspython for everything: a mail or DNS scan asks about ten questions per domain
and, against a resolver on the same network, dnspython's message objects (names, enums,
rdata classes, rdatasets) cost more CPU than the network does: profiled, about half a
millisecond per question, the whole of a scan's time. The plain questions need only the
header, the answer records of the asked type in presentation form, and the TTLs: this
module reads just that, with :mod:`struct`. Anything it does not read plainly (an owner or
target name with characters that need escaping, a type it does not know, a malformed
message) raises :class:`Unusual`, and the caller hands the same bytes to dnspython, so an
answer is never read two ways. DNSSEC material (RRSIG, DNSKEY, DS, NSEC*) is always read
by dnspython, on demand.

The text produced is dnspython's presentation form for these types (names absolute with
their trailing dot and their case as served, TXT strings joined unquoted, IPv6 in
dnspython's form), so facts do not depend on which reader read them; the differential
test in ``tests/dns/test_dns_wire.py`` holds the two readers to the same output.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
"""The types read here; every other type is read by dnspython."""
NAME_TYPES = frozenset({2, 5, 12})
SINGLETONS = frozenset({5, 6})
"""CNAME and SOA: dnspython keeps the last of a name's records of these types (RFC 2181
§10.1, RFC 1035 §5.2); a second one is unusual, left to it."""
SOA = 6
OPT = 41
RRSIG = 46
CLASS_IN = 1
RD, CD = 0x0100, 0x0010
DO = 0x8000
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_SOA_NUMBERS = struct.Struct("!IIIII")
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*/")
"""Bytes a label may hold for its text to be itself (dnspython escapes the others)."""
MAX_POINTERS = 64


class Unusual(Exception):
    """What this reader does not read plainly: dnspython reads the message instead."""


def encode_name(name: str) -> bytes:
    """``name`` (absolute, without its final dot; ``"."`` for the root) in wire form.

    Plain ASCII host names are encoded here; a name with escapes or non-ASCII characters
    goes through dnspython (IDNA, ``\\DDD``), so both readers agree on what was asked.
    Raises ValueError for a name DNS cannot carry.
    """
    if name == ".":
        return b"\x00"
    raw = name.encode("ascii", "replace")
    if "\\" in name or not name.isascii() or b"?" in raw:
        import dns.exception
        import dns.name

        try:
            encoded = dns.name.from_text(name + ".").to_wire()
        except (dns.exception.DNSException, UnicodeError) as exc:
            raise ValueError(str(exc) or type(exc).__name__) from None
        assert encoded is not None
        return bytes(encoded)
    out = bytearray()
    for label in raw.split(b"."):
        if not 0 < len(label) < 64:
            raise ValueError(f"label of {len(label)} bytes in {name!r}")
        out.append(len(label))
        out += label
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"{name!r} is longer than 255 bytes")
    return bytes(out)


_IDS: list[int] = []


def random_id() -> int:
    """A query ID from the system's CSPRNG (RFC 5452 §9.2), drawn 1,024 at a time: one
    ``getrandom`` call per question cost more than the rest of the question."""
    try:
        return _IDS.pop()
    except IndexError:
        _IDS.extend(struct.unpack("!1024H", os.urandom(2048)))
        return _IDS.pop()


def query(qname: bytes, qtype: int, flags: int, payload: int) -> tuple[int, bytes, bytes]:
    """A query with EDNS0 and the DO bit: (its random ID, the whole message, its question
    section, which the answer must echo)."""
    qid = random_id()
    question = qname + struct.pack("!HH", qtype, CLASS_IN)
    opt = b"\x00" + struct.pack("!HHIH", OPT, payload, DO, 0)
    return qid, _HEADER.pack(qid, flags, 1, 0, 0, 1) + question + opt, question


def echoes(data: bytes, qid: int, question: bytes) -> bool:
    """The datagram answers our question: same ID, QR set, and our question section
    (names compared without case, RFC 4343). A forged or late answer fails this."""
    if len(data) < 12 + len(question) or int.from_bytes(data[:2], "big") != qid:
        return False
    if not data[2] & 0x80 or data[4:6] != b"\x00\x01":
        return False
    echoed = data[12 : 12 + len(question)]
    return echoed[:-4].lower() == question[:-4].lower() and echoed[-4:] == question[-4:]


@dataclass(frozen=True)
class Reply:
    """What the lean reader found in a response."""

    flags: int
    rcode: int
    records: tuple[str, ...]
    ttl: int | None
    """The smallest TTL of the answer and authority records (None when there are none)."""
    signed: bool = False
    """Whether the answer section holds an RRSIG record (if not, no signature covers the
    records read, and nobody need ask dnspython for them)."""


def read(data: bytes, qtype: int, limit: int) -> Reply:
    """Read a response to a question of ``qtype``: any type when the answer holds no
    record of it (a negative answer: NXDOMAIN, or NOERROR without data), else one of
    :data:`TYPES` (a record of another type is :class:`Unusual`, for dnspython)."""
    try:
        return _read(data, qtype, limit)
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
        raise Unusual(str(exc)) from None


def _read(data: bytes, qtype: int, limit: int) -> Reply:
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    pos = 12
    asked = _owner_key(data, pos) if qtype == SOA and qdcount else None  # an SOA's zone
    for _ in range(qdcount):
        pos = _skip_name(data, pos) + 4
    groups: dict[bytes, list[str]] = {}
    seen: set[tuple[bytes, str | bytes]] = set()
    ttl: int | None = None
    extended = 0
    signed = False
    for index in range(ancount + nscount + arcount):
        owner_end = _skip_name(data, pos)
        rtype, rclass, rttl, rdlength = _RR.unpack_from(data, owner_end)
        start = owner_end + 10
        end = start + rdlength
        if end > len(data):
            raise Unusual("record past the end of the message")
        if rtype == OPT:
            if index < ancount + nscount:
                raise Unusual("OPT outside the additional section")
            extended = rttl >> 24
        elif index < ancount + nscount:
            ttl = rttl if ttl is None else min(ttl, rttl)
        if index < ancount and rtype == RRSIG:
            signed = True
        if index < ancount and rtype == qtype:
            if rclass != CLASS_IN:
                raise Unusual(f"class {rclass}")
            owner = _owner(data, pos, qtype, asked, groups)
            text = _rdata_text(data, qtype, start, end)
            # dnspython's rdataset is a set: a repeated record counts once (names in
            # MX, NS, CNAME and PTR compared without case, RFC 4034 §6.2).
            same = text.lower() if qtype == 15 or qtype in NAME_TYPES else data[start:end]
            if (owner, same) not in seen:
                seen.add((owner, same))
                groups.setdefault(owner, []).append(text)
        pos = end
    records = [text for texts in groups.values() for text in texts]
    rcode = (extended << 4) | (flags & 0xF)
    return Reply(flags, rcode, tuple(records[:limit]), ttl, signed)


def _owner(
    data: bytes, pos: int, qtype: int, asked: bytes | None, groups: dict[bytes, list[str]]
) -> bytes:
    """The owner of an answer record of the asked type, as a key; :class:`Unusual` for an
    SOA not of the name asked (its name is the zone's, read from the question) or a
    second record of a type a name holds once."""
    owner = _owner_key(data, pos)
    if qtype == SOA:
        if owner != asked:
            raise Unusual("an SOA record of another name than the one asked")
        _name_text(data, pos)  # the zone's name is the one asked, written plainly
    if qtype in SINGLETONS and owner in groups:
        raise Unusual("a second record of a type a name holds once")
    return owner


def _skip_name(data: bytes, pos: int) -> int:
    """The offset just past the (possibly compressed) name at ``pos``."""
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise Unusual("unknown label type")
        pos += length + 1


def _labels(data: bytes, pos: int) -> list[bytes]:
    """The labels of the name at ``pos``, following compression pointers (backwards only,
    a bounded number of times, so a loop in a hostile message ends)."""
    labels: list[bytes] = []
    hops = 0
    total = 0
    while True:
        length = data[pos]
        if length == 0:
            return labels
        if length & 0xC0 == 0xC0:
            target = ((length & 0x3F) << 8) | data[pos + 1]
            hops += 1
            if target >= pos or hops > MAX_POINTERS:
                raise Unusual("bad compression pointer")
            pos = target
            continue
        if length & 0xC0:
            raise Unusual("unknown label type")
        label = data[pos + 1 : pos + 1 + length]
        if len(label) != length:
            raise Unusual("label past the end of the message")
        total += length + 1
        if total > 255:
            raise Unusual("name longer than 255 bytes")
        labels.append(label)
        pos += length + 1


def _owner_key(data: bytes, pos: int) -> bytes:
    return b".".join(_labels(data, pos)).lower()


def _name_text(data: bytes, pos: int) -> str:
    labels = _labels(data, pos)
    if not labels:
        return "."
    for label in labels:
        if not _PLAIN.issuperset(label):
            raise Unusual("a name that needs escaping")
    return b".".join(labels).decode("ascii") + "."


def _rdata_text(data: bytes, rtype: int, start: int, end: int) -> str:
    if rtype == 1:
        if end - start != 4:
            raise Unusual("A record of the wrong length")
        return socket.inet_ntoa(data[start:end])
    if rtype == 28:
        if end - start != 16:
            raise Unusual("AAAA record of the wrong length")
        import dns.ipv6

        return dns.ipv6.inet_ntoa(data[start:end])
    if rtype == 16:
        return _txt(data, start, end)
    if rtype == 15:
        if end - start < 3:
            raise Unusual("MX record too short")
        return f"{int.from_bytes(data[start : start + 2], 'big')} {_name_text(data, start + 2)}"
    if rtype in NAME_TYPES:
        return _name_text(data, start)
    if rtype == SOA:
        return _soa_text(data, start, end)
    raise Unusual(f"type {rtype}")


def _soa_text(data: bytes, start: int, end: int) -> str:
    """``MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM``, as dnspython writes an SOA."""
    rname = _skip_name(data, start)
    numbers = _skip_name(data, rname)
    if numbers + _SOA_NUMBERS.size != end:
        raise Unusual("SOA record of the wrong length")
    values = " ".join(str(n) for n in _SOA_NUMBERS.unpack_from(data, numbers))
    return f"{_name_text(data, start)} {_name_text(data, rname)} {values}"


def _txt(data: bytes, start: int, end: int) -> str:
    """The strings of a TXT record joined (RFC 7208 §3.3), as dnspython's reader with
    ``b"".join(rdata.strings)`` gives them."""
    if start == end:
        raise Unusual("empty TXT rdata")
    parts: list[bytes] = []
    pos = start
    while pos < end:
        length = data[pos]
        if pos + 1 + length > end:
            raise Unusual("TXT string past its record")
        parts.append(data[pos + 1 : pos + 1 + length])
        pos += 1 + length
    return b"".join(parts).decode("utf-8", "replace")
