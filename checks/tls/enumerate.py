"""Enumeration strategies: many short probes, run concurrently, that add up to facts.

* protocols: one probe per protocol version, each offering every suite we know;
* suites, per protocol, by elimination: offer all, note the chosen one, remove it,
  repeat until the server refuses. The list is split in chunks eliminated in
  parallel, since what a server accepts does not depend on what else is offered;
* server order: read off the elimination itself (each chunk is offered in ascending
  code order, so a server that follows the client always picks the lowest code left),
  and confirmed, when the picks look like client order, by one probe offering the
  accepted suites in descending order;
* groups: the same chunked elimination on named groups (HelloRetryRequest in TLS 1.3,
  the ServerKeyExchange curve in TLS 1.2 with every ECDHE suite offered), and the DH
  prime size from one hello offering every DHE suite. These need only the accepted
  protocols, so they run alongside the suite elimination, not after it;
* hygiene: secure renegotiation, extended master secret and session tickets from
  the ServerHello; compression, TLS_FALLBACK_SCSV and the heartbeat extension (then
  Heartbleed, see :func:`heartbleed`) with one extra probe each.

Every strategy stops at the protocols the first probes found accepted: nothing is
enumerated for a protocol the server refused.

An enumeration ends only on a clean refusal: an alert, or a ServerHello choosing
nothing that is left to offer. A probe that got no verdict however patiently it was
asked (:meth:`~checks.tls.probe.Prober.insist`) *cuts* the fact it was for
(:attr:`Enumeration.cuts`): the list found so far may be missing what the next
probe would have found (the weak suites, for a server that stops answering after a
few handshakes), so it is reported unknown, never as complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from checks.tls import wire
from checks.tls.probe import Channel, Outcome, Prober, read_flight

SUITE_CHUNKS = 6
"""Parallel elimination chains per protocol (for lists of more than 16 suites)."""
GROUP_CHUNK = 4
"""Groups per elimination chain."""

_INAPPROPRIATE_FALLBACK = 86
_T = TypeVar("_T")


@dataclass(frozen=True)
class Cut:
    """A probe that got no TLS verdict however often it was asked: which, and how it failed."""

    probe: str
    outcome: Outcome


@dataclass(frozen=True)
class Chain:
    """What one elimination chain found, and the undecided probe that cut it short."""

    found: list[int]
    cut: Outcome | None = None


@dataclass
class Enumeration:
    """Everything the probes learnt about one endpoint."""

    first: dict[str, Outcome] = field(default_factory=dict)
    suites: dict[str, list[int]] = field(default_factory=dict)
    server_order: dict[str, bool | None] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)
    dh_bits: int | None = None
    compression: bool | None = None
    fallback_scsv: bool | None = None
    heartbeat: bool | None = None
    heartbleed: bool | None = None
    cuts: dict[str, Cut] = field(default_factory=dict)
    """Per fact (``cipher_suites``, ``server_order``, ``groups``, ``dh_bits``,
    ``compression``, ``fallback_scsv``, ``heartbleed``), the probe that left it unknown."""

    def settle(self, fact: str, probe: str, answer: _T | Outcome) -> _T | None:
        """``answer``, or None with ``fact`` cut when the probe got no verdict."""
        if isinstance(answer, Outcome):
            self.cut(fact, probe, answer)
            return None
        return answer

    def cut(self, fact: str, probe: str, outcome: Outcome) -> None:
        """Mark ``fact`` unknown; the first failure the server caused names the reason."""
        known = self.cuts.get(fact)
        if known is None or (known.outcome.failure == "unsent" and outcome.failure != "unsent"):
            self.cuts[fact] = Cut(probe, outcome)

    @property
    def protocols(self) -> list[str]:
        """Accepted protocol versions, oldest first."""
        return [p for p in wire.PROTOCOLS if p in self.first and self.first[p].is_accepted]

    def legacy_reply(self) -> wire.Reply | None:
        """The ServerHello of the best protocol below TLS 1.3 (for hygiene facts)."""
        for protocol in reversed(self.protocols):
            outcome = self.first[protocol]
            if protocol not in ("TLSv1.3", "SSLv2") and outcome.reply is not None:
                return outcome.reply
        return None


def _hello(prober: Prober, protocol: str, suites: Sequence[int], **options: object) -> wire.Hello:
    groups = wire.GROUPS_TLS13 if protocol == "TLSv1.3" else wire.GROUPS_TLS12
    hello = wire.Hello(protocol, tuple(suites), prober.endpoint.server_name, groups)
    return replace(hello, **options)  # type: ignore[arg-type]


async def probe_protocols(prober: Prober) -> dict[str, Outcome]:
    """One probe per protocol version, all at once; TLS ≤ 1.2 ones fetch the certificate."""

    async def one(protocol: str) -> Outcome:
        suites = () if protocol == "SSLv2" else wire.suites_for(protocol)
        hello = _hello(prober, protocol, suites, want_certificate=protocol != "TLSv1.3")
        outcome = await prober.ask(hello)
        if outcome.reply is not None and outcome.reply.version not in (protocol, None):
            return Outcome(failure="downgraded", message=f"answered {outcome.reply.version}")
        return outcome

    outcomes = await asyncio.gather(*(one(p) for p in wire.PROTOCOLS))
    return dict(zip(wire.PROTOCOLS, outcomes, strict=True))


def _chunks(items: Sequence[int], count: int) -> list[list[int]]:
    """``count`` interleaved slices, each still in ascending order of the input."""
    return [list(items[i::count]) for i in range(count) if items[i::count]]


async def eliminate_suites(prober: Prober, protocol: str) -> tuple[Chain, bool]:
    """Every suite the server accepts for ``protocol`` in the order found, and whether
    every pick was the lowest code left (what a server following the client does)."""
    offered = list(wire.suites_for(protocol))
    chunks = _chunks(offered, SUITE_CHUNKS) if len(offered) > 16 else [offered]

    def offer(remaining: list[int]) -> wire.Hello:
        return _hello(prober, protocol, remaining)

    def pick(reply: wire.Reply) -> int | None:
        return reply.suite

    found = await asyncio.gather(*(_eliminate(prober, offer, pick, c) for c in chunks))
    client_like = all(chain.found == sorted(chain.found) for chain in found)
    return _joined(found), client_like


def _joined(chains: Sequence[Chain]) -> Chain:
    """The chains' finds end to end, cut by the first chain that was cut (preferring a
    failure the server caused to a probe left unsent for lack of time)."""
    cuts = [chain.cut for chain in chains if chain.cut is not None]
    cut = next((c for c in cuts if c.failure != "unsent"), cuts[0] if cuts else None)
    return Chain([code for chain in chains for code in chain.found], cut)


async def _eliminate(
    prober: Prober,
    offer: Callable[[list[int]], wire.Hello],
    pick: Callable[[wire.Reply], int | None],
    offered: list[int],
) -> Chain:
    """Offer what is left, take out what the server picked, until a clean refusal.

    An alert, or a ServerHello whose pick is not among what was offered, ends the
    chain: nothing left is accepted. A probe with no verdict cuts it instead.
    """
    found: list[int] = []
    remaining = list(offered)
    while remaining:
        outcome = await prober.ask(offer(remaining), patient=True)
        if outcome.is_undecided:
            return Chain(found, outcome)
        if outcome.is_refused:
            break
        chosen = pick(outcome.reply) if outcome.is_accepted and outcome.reply else None
        if chosen is None or chosen not in remaining:
            break
        found.append(chosen)
        remaining.remove(chosen)
    return Chain(found)


async def server_order(
    prober: Prober, protocol: str, accepted: list[int], client_like: bool
) -> bool | Outcome | None:
    """True when the server imposes its own order, None when there is nothing to order.

    The elimination offered each chunk in ascending order: a pick that was not the
    lowest code left already shows the server's own order. Otherwise one hello offers
    the accepted suites highest first; a server following the client takes the first.
    """
    if len(accepted) < 2:
        return None
    if not client_like:
        return True
    descending = sorted(accepted, reverse=True)
    outcome = await prober.ask(_hello(prober, protocol, descending), patient=True)
    if outcome.is_undecided:
        return outcome
    if not (outcome.is_accepted and outcome.reply):
        return None
    return outcome.reply.suite != descending[0]


async def eliminate_groups(prober: Prober, protocol: str, suites: Sequence[int]) -> Chain:
    """Named groups the server accepts with ``suites`` (TLS 1.3, or ECDHE suites in 1.2)."""
    offered = wire.GROUPS_TLS13 if protocol == "TLSv1.3" else wire.GROUPS_TLS12
    chunks = _chunks(offered, max(1, len(offered) // GROUP_CHUNK))
    want = protocol != "TLSv1.3"

    def offer(remaining: list[int]) -> wire.Hello:
        return _hello(prober, protocol, suites, groups=tuple(remaining), want_certificate=want)

    def pick(reply: wire.Reply) -> int | None:
        return reply.group

    return _joined(await asyncio.gather(*(_eliminate(prober, offer, pick, c) for c in chunks)))


async def dh_bits(prober: Prober, protocol: str, suites: Sequence[int]) -> int | Outcome | None:
    """Size of the DH prime the server uses with its DHE suites."""
    hello = _hello(prober, protocol, suites, want_certificate=True)
    outcome = await prober.ask(hello, patient=True)
    if outcome.is_undecided:
        return outcome
    return outcome.reply.dh_bits if outcome.is_accepted and outcome.reply else None


async def compression(prober: Prober, protocol: str) -> bool | Outcome | None:
    """True when the server accepts DEFLATE (CRIME), None when it could not be told."""
    hello = _hello(prober, protocol, wire.suites_for(protocol), offer_compression=True)
    outcome = await prober.ask(hello, patient=True)
    if outcome.is_undecided:
        return outcome
    return outcome.reply.has_compression if outcome.is_accepted and outcome.reply else None


async def fallback_scsv(prober: Prober, protocols: list[str]) -> bool | Outcome | None:
    """True when the server refuses a downgraded hello carrying TLS_FALLBACK_SCSV."""
    below = [p for p in protocols if p not in ("SSLv2",)]
    if len(below) < 2:
        return None
    protocol = below[-2]
    hello = _hello(prober, protocol, wire.suites_for(protocol), fallback_scsv=True)
    outcome = await prober.ask(hello, patient=True)
    if outcome.reply is None:
        return outcome
    return outcome.reply.kind == "alert" and outcome.reply.alert == _INAPPROPRIATE_FALLBACK


async def heartbleed(prober: Prober, protocol: str) -> tuple[bool | None, bool | None] | Outcome:
    """(heartbeat extension acknowledged, Heartbleed) on a TLS ≤ 1.2 protocol.

    The hello offers the heartbeat extension; a server that does not echo it has no
    heartbeat to bleed. One that does gets, right after ServerHelloDone, a heartbeat
    request claiming more than it carries (:func:`wire.heartbleed_probe`): a heartbeat
    record in reply is Heartbleed (CVE-2014-0160); an alert, a close or silence is not.
    Only the reply's record header is read. A hello with no verdict is retried; once
    the heartbeat is acknowledged, what follows is not (silence there is an answer).
    """
    hello = _hello(
        prober, protocol, wire.suites_for(protocol), want_certificate=True, heartbeat=True
    )

    async def exchange() -> tuple[bool | None, bool | None] | Outcome:
        async with prober.channel() as channel:
            await channel.send(wire.client_hello(hello))
            outcome = await read_flight(channel, hello)
            if outcome.is_undecided:
                return outcome
            if not (outcome.is_accepted and outcome.reply):
                return None, None
            if not outcome.reply.has_heartbeat:
                return False, False
            return True, await _heartbeat_answered(channel, protocol, prober.timeout / 2)

    return await prober.insist(exchange)


async def _heartbeat_answered(channel: Channel, protocol: str, wait: float) -> bool:
    """Send the over-long heartbeat request; only a heartbeat record back is Heartbleed."""
    header = b""
    try:
        async with asyncio.timeout(wait):
            await channel.send(wire.heartbleed_probe(protocol))
            while (kind := wire.next_record_type(header)) is None:
                data = await channel.recv()
                if not data:
                    return False
                header += data[:5]
    except (TimeoutError, OSError):
        return False
    return kind == wire.HEARTBEAT_RECORD


async def enumerate_endpoint(prober: Prober, first: dict[str, Outcome]) -> Enumeration:
    """Run every strategy once the accepted protocols are known."""
    result = Enumeration(first=first)
    protocols = [p for p in result.protocols if p != "SSLv2"]
    if "SSLv2" in result.protocols:
        result.suites["SSLv2"] = []
    await asyncio.gather(
        *(_suites(prober, result, p) for p in protocols),
        _groups(prober, result),
        _hygiene(prober, result),
    )
    result.suites = {p: result.suites[p] for p in result.protocols}
    result.server_order = {p: result.server_order[p] for p in protocols}
    return result


async def _suites(prober: Prober, result: Enumeration, protocol: str) -> None:
    chain, client_like = await eliminate_suites(prober, protocol)
    result.suites[protocol] = chain.found
    result.server_order[protocol] = None
    if chain.cut is not None:
        result.cut("cipher_suites", f"{protocol} suite elimination", chain.cut)
        return
    order = await server_order(prober, protocol, chain.found, client_like)
    result.server_order[protocol] = result.settle("server_order", f"{protocol} order", order)


async def _groups(prober: Prober, result: Enumeration) -> None:
    legacy = _best_legacy(result)

    async def tls13() -> Chain:
        if "TLSv1.3" not in result.protocols:
            return Chain([])
        return await eliminate_groups(prober, "TLSv1.3", wire.suites_for("TLSv1.3"))

    async def ecdhe() -> Chain:
        if legacy is None:
            return Chain([])
        return await eliminate_groups(prober, legacy, _by_kex(legacy, "ECDHE"))

    async def dhe() -> int | Outcome | None:
        return await dh_bits(prober, legacy, _by_kex(legacy, "DHE")) if legacy else None

    modern, older, bits = await asyncio.gather(tls13(), ecdhe(), dhe())
    result.dh_bits = result.settle("dh_bits", f"{legacy} DHE", bits)
    joined = _joined([modern, older])
    result.groups = list(dict.fromkeys(joined.found))
    if joined.cut is not None:
        result.cut("groups", "group elimination", joined.cut)


def _by_kex(protocol: str, kex: str) -> tuple[int, ...]:
    return tuple(c for c in wire.suites_for(protocol) if wire.suite_info(c).kex == kex)


async def _hygiene(prober: Prober, result: Enumeration) -> None:
    legacy = _best_legacy(result)
    if legacy is None:
        scsv = await fallback_scsv(prober, result.protocols)
        result.fallback_scsv = result.settle("fallback_scsv", "TLS_FALLBACK_SCSV", scsv)
        return
    deflate, scsv, bleed = await asyncio.gather(
        compression(prober, legacy),
        fallback_scsv(prober, result.protocols),
        heartbleed(prober, legacy),
    )
    result.compression = result.settle("compression", f"{legacy} compression", deflate)
    result.fallback_scsv = result.settle("fallback_scsv", "TLS_FALLBACK_SCSV", scsv)
    beat = result.settle("heartbleed", f"{legacy} heartbeat", bleed)
    result.heartbeat, result.heartbleed = beat or (None, None)


def _best_legacy(result: Enumeration) -> str | None:
    legacy = [p for p in result.protocols if p not in ("SSLv2", "TLSv1.3")]
    return legacy[-1] if legacy else None
