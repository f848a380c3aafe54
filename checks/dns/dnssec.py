"""DNSSEC validated by Rempart, from trust anchors, with dnspython.

Why not the AD bit: most configured resolvers do not validate, and one that does only
says "I checked" without saying against what. Here the chain is walked from a trust
anchor down to the domain (RFC 4035 §5): the anchor's DS (or DNSKEY) designates the keys
that must sign the zone's DNSKEY RRset; that RRset's keys sign the DS RRset of the next
delegation; and so on. Every signature is checked with :func:`dns.dnssec.validate`
(validity period included), every answer comes from :class:`checks.dns.client.DnsClient`.

Outcomes (RFC 4033 §5, RFC 4035 §4.3):

- ``secure``: an unbroken chain of valid signatures from an anchor to the domain's zone;
- ``insecure``: the domain is under no anchor, or a signed parent proves (NSEC/NSEC3,
  itself validated) that a delegation on the way has no DS, or the DS only names
  algorithms this validator does not implement;
- ``bogus``: the chain should be signed and is not: a DNSKEY RRset not signed by a key the
  DS designates, an expired or invalid signature, a missing DS without a valid proof;
- ``indeterminate``: the servers answered but not so that a conclusion could be drawn
  (SERVFAIL or REFUSED on a question of the chain).

A question nobody answered (timeout) leaves the status unknown (:attr:`Validation.error`):
that is not ``indeterminate`` and never ``insecure``.

Known limits: NSEC3 proofs of a missing DS are checked by the matching record (and an
opt-out span covering the name is taken as insecure, RFC 5155 §6) without proving the
closest encloser (an empty non-terminal on the way is accepted on a validated NSEC
covering it, or the NSEC3 matching it); wildcard expansions are not followed; CNAMEs on
the walk are not followed (a zone apex has none).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from checks.dns.client import Answer, DnsClient

ROOT_ANCHORS = Path(__file__).with_name("root-anchors.yaml")
MAX_ANCHORS_BYTES = 256 * 1024


@dataclass(frozen=True)
class Anchors:
    """Trust anchors by zone name (lower-case, no trailing dot; the root is ``.``):
    DS rdatas and DNSKEY rdatas, in dnspython's form."""

    ds: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    dnskey: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    source: str = ""

    def names(self) -> set[str]:
        """Every zone name an anchor is configured for."""
        return set(self.ds) | set(self.dnskey)

    def closest(self, domain: str) -> str | None:
        """The anchor at or above ``domain`` that is closest to it (None: under none)."""
        for name in _ancestors(domain):
            if name in self.names():
                return name
        return None


def _ancestors(domain: str) -> list[str]:
    """``a.b.c`` -> ``[a.b.c, b.c, c, .]``."""
    labels = [] if domain == "." else domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))] + ["."]


def parse_anchors(text: str, source: str) -> Anchors:
    """DS or DNSKEY records in zone-file syntax (TTL and class optional), one anchor set
    per owner name. Raises ValueError with one line naming the source."""
    import dns.exception
    import dns.rdatatype
    import dns.zonefile

    if len(text) > MAX_ANCHORS_BYTES:
        raise ValueError(f"{source}: more than {MAX_ANCHORS_BYTES} bytes of anchors")
    try:
        rrsets = dns.zonefile.read_rrsets(text, rdclass=None, default_ttl=0, relativize=False)
    except (dns.exception.DNSException, ValueError) as exc:
        raise ValueError(
            f"{source}: not DS or DNSKEY records in zone-file syntax ({exc})"
        ) from None
    ds: dict[str, list[Any]] = {}
    keys: dict[str, list[Any]] = {}
    for rrset in rrsets:
        owner = rrset.name.to_text(omit_final_dot=True).lower() or "."
        if rrset.rdtype == dns.rdatatype.DS:
            ds.setdefault(owner, []).extend(rrset)
        elif rrset.rdtype == dns.rdatatype.DNSKEY:
            keys.setdefault(owner, []).extend(rrset)
        else:
            kind = dns.rdatatype.to_text(rrset.rdtype)
            raise ValueError(f"{source}: {owner} {kind}: only DS and DNSKEY records are anchors")
    if not ds and not keys:
        raise ValueError(f"{source}: no DS or DNSKEY record")
    return Anchors(
        {k: tuple(v) for k, v in ds.items()}, {k: tuple(v) for k, v in keys.items()}, source
    )


def load_anchors(path: str | None) -> Anchors:
    """The anchors of ``path`` (zone-file syntax), or the IANA root KSKs shipped with Rempart."""
    if path is None:
        return _root_anchors()
    file = Path(path)
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_ANCHORS_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read DNSSEC anchors ({exc.strerror})") from None
    return _parsed(raw.decode("utf-8", "replace"), str(path))


@functools.lru_cache(maxsize=1)
def _root_anchors() -> Anchors:
    """The shipped IANA anchors, parsed once per process (every ``dns://`` target of a
    scan needs them; they change only with Rempart)."""
    import yaml

    data = yaml.safe_load(ROOT_ANCHORS.read_text())
    return parse_anchors("\n".join(data["records"]) + "\n", str(data["source"]))


@functools.lru_cache(maxsize=8)
def _parsed(text: str, source: str) -> Anchors:
    """An anchors file parsed once per content: the file is read for every target (it
    may change between two scans of one process), parsed only when it did."""
    return parse_anchors(text, source)


@dataclass
class Validation:
    """What the walk found. ``error`` set: a question went unanswered, status unknown."""

    status: str | None = None
    reason: str = ""
    zone: str | None = None
    """The zone the domain is in (its apex), as far as the walk went."""
    algorithms: list[int] = field(default_factory=list)
    ds_digest_types: list[int] = field(default_factory=list)
    expirations: list[int] = field(default_factory=list)
    """RRSIG expirations (POSIX seconds) seen on the domain's zone's records."""
    error: str | None = None
    keys: Any = None
    """The domain zone's validated DNSKEY RRset (secure only), to check more answers."""

    def expires_in_days(self, now: float | None = None) -> float | None:
        """Days to the soonest RRSIG expiry seen (negative: already expired)."""
        if not self.expirations:
            return None
        return round((min(self.expirations) - (now or time.time())) / 86400, 1)


class _Stop(Exception):
    """Ends the walk with a verdict (or an unanswered question)."""

    def __init__(self, status: str | None, reason: str, error: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error = error


def _fqdn(name: str) -> str:
    return "." if name == "." else name + "."


async def validate_domain(client: DnsClient, domain: str, anchors: Anchors) -> Validation:
    """Walk from the closest anchor down to ``domain``; see the module docstring."""
    result = Validation()
    anchor = anchors.closest(domain)
    if anchor is None:
        result.status, result.reason = "insecure", f"{domain} is under no trust anchor"
        return result
    try:
        await _walk(client, domain, anchor, anchors, result)
    except _Stop as stop:
        result.status, result.reason, result.error = stop.status, stop.reason, stop.error
    return result


async def _ask(client: DnsClient, name: str, rdtype: str) -> Answer:
    answer = await client.query(name, rdtype)
    if not answer.known:
        raise _Stop(None, f"{name} {rdtype}: {answer.error}", error=answer.error)
    if answer.rcode not in {"NOERROR", "NXDOMAIN"}:
        raise _Stop("indeterminate", f"{name} {rdtype}: the resolver answered {answer.rcode}")
    return answer


async def _walk(
    client: DnsClient, domain: str, anchor: str, anchors: Anchors, result: Validation
) -> None:
    import dns.rdatatype

    zone = anchor
    trusted_ds: tuple[Any, ...] = tuple(anchors.ds.get(anchor, ()))
    trusted_keys: tuple[Any, ...] = tuple(anchors.dnskey.get(anchor, ()))
    keys = await _zone_keys(client, zone, trusted_ds, trusted_keys)
    result.zone = zone
    path = [n for n in reversed(_ancestors(domain)) if _below(n, anchor)]
    for name in path:
        answer = await _ask(client, name, "DS")
        if answer.rcode == "NXDOMAIN":
            raise _Stop("indeterminate", f"{name} does not exist (NXDOMAIN)")
        rrset = _rrset(answer, dns.rdatatype.DS)
        if rrset is not None:
            _check(client, rrset, answer, keys, zone, f"the DS RRset of {name}")
            supported = [ds for ds in rrset if _supported(ds.algorithm)]
            if not supported:
                raise _Stop("insecure", f"the DS of {name} names only unsupported algorithms")
            zone = name
            result.zone = zone
            result.ds_digest_types = sorted({int(ds.digest_type) for ds in rrset})
            keys = await _zone_keys(client, zone, tuple(supported), ())
            continue
        types = _denial_types(answer, name, keys, zone)
        if types is None:
            raise _Stop("bogus", f"no valid proof that {name} has no DS (signed parent {zone})")
        if types == {"OPT-OUT"} or (dns.rdatatype.NS in types and name != zone):
            result.status = "insecure"
            result.reason = f"{name} is delegated without DS (proven by {zone})"
            result.zone = name
            result.ds_digest_types = []
            return
    result.status = "secure"
    result.reason = f"chain of trust from the anchor for {_fqdn(anchor)} to {_fqdn(zone)}"
    result.algorithms = sorted({int(k.algorithm) for k in keys})
    result.keys = keys
    result.expirations.extend(_expirations(keys.rrsigs))


def _below(name: str, anchor: str) -> bool:
    if name == anchor:
        return False
    return anchor == "." or name.endswith("." + anchor)


SUPPORTED_ALGORITHMS = frozenset({5, 7, 8, 10, 13, 14, 15, 16})
"""DNSSEC algorithms this validator checks (dnspython with ``cryptography``): RSA/SHA-1,
RSA/SHA-2, ECDSA P-256/P-384, Ed25519, Ed448. A DS naming only others leaves the zone
insecure (RFC 4035 §5.2), never bogus."""


def _supported(algorithm: int) -> bool:
    return int(algorithm) in SUPPORTED_ALGORITHMS


@dataclass
class _Keys:
    """A zone's validated DNSKEY RRset and the signatures seen on it."""

    rrset: Any
    rrsigs: tuple[Any, ...]

    def __iter__(self) -> Any:
        return iter(self.rrset)


def _rrset(answer: Answer, rdtype: int) -> Any:
    """The answer section's RRset of the asked type at the asked name (None: none)."""
    import dns.name

    message = answer.message if answer.records else None
    if message is None:
        return None
    owner = dns.name.from_text(_fqdn(answer.name))
    for rrset in message.answer:
        if rrset.rdtype == rdtype and rrset.name == owner:
            return rrset
    return None


def _sigs(section: Iterable[Any], owner: Any, covers: int) -> Any:
    import dns.rdatatype

    for rrset in section:
        if rrset.rdtype == dns.rdatatype.RRSIG and rrset.name == owner and rrset.covers == covers:
            return rrset
    return None


def _check(
    client: DnsClient, rrset: Any, answer: Answer, keys: _Keys, zone: str, what: str
) -> None:
    """``rrset`` is signed, validly and now, by a key of ``zone``; else bogus."""
    import dns.dnssec
    import dns.exception
    import dns.name

    if _reused(client, ("signed", what), answer, keys) is not None:
        return
    sigs = _sigs(answer.message.answer, rrset.name, rrset.rdtype)
    if sigs is None:
        raise _Stop("bogus", f"{what} is not signed")
    try:
        dns.dnssec.validate(rrset, sigs, {dns.name.from_text(_fqdn(zone)): keys.rrset})
    except dns.exception.ValidationFailure as exc:
        raise _Stop("bogus", f"{what}: {_failure(sigs, exc)}") from None
    _remember(client, ("signed", what), answer, keys, sigs, True)


@dataclass
class _Proof:
    """A signature check that held: the answer it was made on, what it was checked
    against, and until when (the first expiry among the answer's signatures: a check
    that held stays true while every signature it may have rested on is still valid)."""

    answer: Answer
    basis: Any
    until: float
    result: Any


PROOFS_KEPT = 50_000
"""Proofs kept per session (a scan): past it, they are forgotten and made again."""


def _reused(client: DnsClient, key: tuple[str, str], answer: Answer, basis: Any) -> Any:
    """What an earlier check proved on this very answer object (the session's cache
    hands out the same object while the answer lives, a new one once it is asked
    again) against the same basis, still before its signatures expire; else None."""
    proof = client.session.proven.get(key)
    if proof is None or proof.answer is not answer or time.time() >= proof.until:
        return None
    if proof.basis is not basis and proof.basis != basis:
        return None
    return proof.result


def _remember(
    client: DnsClient, key: tuple[str, str], answer: Answer, basis: Any, sigs: Any, result: Any
) -> None:
    proven = client.session.proven
    if len(proven) >= PROOFS_KEPT:
        proven.clear()
    until = min((int(s.expiration) for s in sigs), default=0)
    proven[key] = _Proof(answer, basis, until, result)


def _failure(sigs: Any, exc: Exception) -> str:
    now = time.time()
    if sigs is not None and all(int(s.expiration) < now for s in sigs):
        return "its signatures expired"
    if sigs is not None and all(int(s.inception) > now for s in sigs):
        return "its signatures are not yet valid"
    return f"no valid signature ({exc})"


async def _zone_keys(
    client: DnsClient, zone: str, ds: tuple[Any, ...], anchors: tuple[Any, ...]
) -> _Keys:
    """The zone's DNSKEY RRset, self-signed by a key the DS (or a DNSKEY anchor) names."""
    import dns.dnssec
    import dns.exception
    import dns.name
    import dns.rdatatype
    import dns.rrset

    answer = await _ask(client, zone, "DNSKEY")
    basis = (ds, anchors)
    known = _reused(client, ("keys", zone), answer, basis)
    if known is not None:
        return cast(_Keys, known)
    rrset = _rrset(answer, dns.rdatatype.DNSKEY)
    if rrset is None:
        raise _Stop("bogus", f"{_fqdn(zone)} should be signed but has no DNSKEY")
    owner = dns.name.from_text(_fqdn(zone))
    entry = [key for key in rrset if _designated(owner, key, ds, anchors)]
    if not entry:
        raise _Stop("bogus", f"no DNSKEY of {_fqdn(zone)} matches its DS or trust anchor")
    sigs = _sigs(answer.message.answer, owner, dns.rdatatype.DNSKEY)
    if sigs is None:
        raise _Stop("bogus", f"the DNSKEY RRset of {_fqdn(zone)} is not signed")
    entry_set = dns.rrset.from_rdata_list(owner, rrset.ttl, entry)
    try:
        dns.dnssec.validate(rrset, sigs, {owner: entry_set})
    except dns.exception.ValidationFailure as exc:
        raise _Stop("bogus", f"the DNSKEY RRset of {_fqdn(zone)}: {_failure(sigs, exc)}") from None
    keys = _Keys(rrset, tuple(sigs))
    _remember(client, ("keys", zone), answer, basis, sigs, keys)
    return keys


def _designated(owner: Any, key: Any, ds: tuple[Any, ...], anchors: tuple[Any, ...]) -> bool:
    import dns.dnssec
    import dns.exception

    if any(key == anchor for anchor in anchors):
        return True
    for record in ds:
        if int(record.key_tag) != dns.dnssec.key_id(key) or record.algorithm != key.algorithm:
            continue
        try:
            made = dns.dnssec.make_ds(owner, key, record.digest_type, validating=True)
        except (dns.exception.UnsupportedAlgorithm, dns.exception.DeniedByPolicy, ValueError):
            continue
        if made.digest == record.digest:
            return True
    return False


def _denial_types(answer: Answer, name: str, keys: _Keys, zone: str) -> set[Any] | None:
    """The types a validated NSEC/NSEC3 says exist at ``name`` (``{"OPT-OUT"}`` for an
    opt-out span covering it), or None when the answer proves nothing."""
    import dns.dnssec
    import dns.exception
    import dns.name
    import dns.rdatatype

    message = answer.message
    if message is None:
        return None
    owner = dns.name.from_text(_fqdn(name))
    zone_name = dns.name.from_text(_fqdn(zone))
    for rrset in message.authority:
        if rrset.rdtype not in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
            continue
        sigs = _sigs(message.authority, rrset.name, rrset.rdtype)
        if sigs is None:
            continue
        try:
            dns.dnssec.validate(rrset, sigs, {zone_name: keys.rrset})
        except dns.exception.ValidationFailure:
            continue
        for rdata in rrset:
            if rrset.rdtype == dns.rdatatype.NSEC and rrset.name == owner:
                return _bitmap(rdata)
            if rrset.rdtype == dns.rdatatype.NSEC and _between(rrset.name, owner, rdata.next):
                return set()  # no node at all (an empty non-terminal): not a delegation
            if rrset.rdtype == dns.rdatatype.NSEC3:
                hashed = dns.dnssec.nsec3_hash(owner, rdata.salt, rdata.iterations, rdata.algorithm)
                first = rrset.name.labels[0].decode().upper()
                if first == hashed:
                    return _bitmap(rdata)
                if rdata.flags & 1 and _covers(first, rdata, hashed):
                    return {"OPT-OUT"}
    return None


def _between(owner: Any, name: Any, following: Any) -> bool:
    """``name`` falls strictly between an NSEC's owner and its next name (canonical order,
    RFC 4034 §6.1; the last NSEC of a zone wraps around to the apex)."""
    if owner < following:
        return bool(owner < name < following)
    return bool(name > owner or name < following)


def _covers(first: str, rdata: Any, hashed: str) -> bool:
    import base64

    following = base64.b32hexencode(rdata.next).decode().upper()
    if first < following:
        return first < hashed < following
    return hashed > first or hashed < following  # the last NSEC3 of the chain


def _bitmap(rdata: Any) -> set[Any]:
    import dns.rdatatype

    types: set[Any] = set()
    for window, bitmap in rdata.windows:
        for index, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    types.add(dns.rdatatype.RdataType.make(window * 256 + index * 8 + bit))
    return types


def _expirations(rrsigs: Iterable[Any]) -> list[int]:
    return [int(s.expiration) for s in rrsigs]


def check_signed(answer: Answer, keys: Any, zone: str) -> tuple[bool, list[int]]:
    """Whether the answer's RRset of its type is validly signed by ``keys`` (the zone's
    validated DNSKEY RRset), and the expirations of its signatures."""
    import dns.dnssec
    import dns.exception
    import dns.name
    import dns.rdatatype

    rdtype = dns.rdatatype.from_text(answer.rdtype)
    rrset = _rrset(answer, rdtype)
    if rrset is None or keys is None:
        return False, []
    sigs = _sigs(answer.message.answer, rrset.name, rdtype)
    if sigs is None:
        return False, []
    try:
        dns.dnssec.validate(rrset, sigs, {dns.name.from_text(_fqdn(zone)): keys.rrset})
    except dns.exception.ValidationFailure:
        return False, _expirations(sigs)
    return True, _expirations(sigs)
