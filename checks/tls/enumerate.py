"""Enumeration strategies: many short probes, run concurrently, that add up to facts.

* protocols: one probe per protocol version, each offering every suite we know;
* suites, per protocol, by elimination: offer all, note the chosen one, remove it,
  repeat until the server refuses. The list is split in a few chunks eliminated in
  parallel, since what a server accepts does not depend on what else is offered;
* server order: offer the accepted suites forward, then reversed;
* groups: the same elimination on named groups (HelloRetryRequest in TLS 1.3, the
  ServerKeyExchange curve in TLS 1.2);
* hygiene: secure renegotiation, extended master secret and session tickets from
  the ServerHello; compression and TLS_FALLBACK_SCSV with one extra probe each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from checks.tls import wire
from checks.tls.probe import Outcome, Prober

CHUNKS = 4
"""Parallel elimination chains per protocol."""

_INAPPROPRIATE_FALLBACK = 86


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


async def eliminate_suites(prober: Prober, protocol: str) -> list[int]:
    """Every suite the server accepts for ``protocol``, in the order found."""
    offered = list(wire.suites_for(protocol))
    chunks = [offered[i::CHUNKS] for i in range(CHUNKS)] if len(offered) > 16 else [offered]
    found = await asyncio.gather(*(_eliminate(prober, protocol, chunk) for chunk in chunks))
    return [code for chunk in found for code in chunk]


async def _eliminate(prober: Prober, protocol: str, offered: list[int]) -> list[int]:
    accepted: list[int] = []
    remaining = list(offered)
    while remaining:
        outcome = await prober.ask(_hello(prober, protocol, remaining))
        chosen = outcome.reply.suite if outcome.is_accepted and outcome.reply else None
        if chosen is None or chosen not in remaining:
            break
        accepted.append(chosen)
        remaining.remove(chosen)
    return accepted


async def server_order(prober: Prober, protocol: str, accepted: list[int]) -> bool | None:
    """True when the server imposes its own order, None when there is nothing to order."""
    if len(accepted) < 2:
        return None
    forward, backward = await asyncio.gather(
        prober.ask(_hello(prober, protocol, accepted)),
        prober.ask(_hello(prober, protocol, accepted[::-1])),
    )
    if not (forward.reply and backward.reply):
        return None
    return not (forward.reply.suite == accepted[0] and backward.reply.suite == accepted[-1])


async def eliminate_groups(prober: Prober, protocol: str, suites: list[int]) -> list[int]:
    """Named groups the server accepts with ``suites`` (TLS 1.3, or ECDHE suites in 1.2)."""
    remaining = list(wire.GROUPS_TLS13 if protocol == "TLSv1.3" else wire.GROUPS_TLS12)
    accepted: list[int] = []
    want = protocol != "TLSv1.3"
    while remaining:
        hello = _hello(prober, protocol, suites, groups=tuple(remaining), want_certificate=want)
        outcome = await prober.ask(hello)
        group = outcome.reply.group if outcome.is_accepted and outcome.reply else None
        if group is None or group not in remaining:
            break
        accepted.append(group)
        remaining.remove(group)
    return accepted


async def dh_bits(prober: Prober, protocol: str, suites: list[int]) -> int | None:
    """Size of the DH prime the server uses with its DHE suites."""
    outcome = await prober.ask(_hello(prober, protocol, suites, want_certificate=True))
    return outcome.reply.dh_bits if outcome.is_accepted and outcome.reply else None


async def compression(prober: Prober, protocol: str) -> bool | None:
    """True when the server accepts DEFLATE (CRIME), None when it could not be told."""
    hello = _hello(prober, protocol, wire.suites_for(protocol), offer_compression=True)
    outcome = await prober.ask(hello)
    return outcome.reply.has_compression if outcome.is_accepted and outcome.reply else None


async def fallback_scsv(prober: Prober, protocols: list[str]) -> bool | None:
    """True when the server refuses a downgraded hello carrying TLS_FALLBACK_SCSV."""
    below = [p for p in protocols if p not in ("SSLv2",)]
    if len(below) < 2:
        return None
    protocol = below[-2]
    hello = _hello(prober, protocol, wire.suites_for(protocol), fallback_scsv=True)
    outcome = await prober.ask(hello)
    if outcome.reply is None:
        return None
    return outcome.reply.kind == "alert" and outcome.reply.alert == _INAPPROPRIATE_FALLBACK


async def enumerate_endpoint(prober: Prober, first: dict[str, Outcome]) -> Enumeration:
    """Run every strategy once the accepted protocols are known."""
    result = Enumeration(first=first)
    protocols = [p for p in result.protocols if p != "SSLv2"]
    suites = await asyncio.gather(*(eliminate_suites(prober, p) for p in protocols))
    result.suites = dict(zip(protocols, suites, strict=True))
    if "SSLv2" in result.protocols:
        result.suites["SSLv2"] = []
    await asyncio.gather(_orders(prober, result), _groups(prober, result), _hygiene(prober, result))
    return result


async def _orders(prober: Prober, result: Enumeration) -> None:
    protocols = [p for p in result.protocols if p != "SSLv2"]
    orders = await asyncio.gather(*(server_order(prober, p, result.suites[p]) for p in protocols))
    result.server_order = dict(zip(protocols, orders, strict=True))


async def _groups(prober: Prober, result: Enumeration) -> None:
    found: list[int] = []
    if result.suites.get("TLSv1.3"):
        found += await eliminate_groups(prober, "TLSv1.3", result.suites["TLSv1.3"])
    legacy = _best_legacy(result)
    if legacy:
        ecdhe = [c for c in result.suites[legacy] if wire.suite_info(c).kex == "ECDHE"]
        if ecdhe:
            found += [g for g in await eliminate_groups(prober, legacy, ecdhe) if g not in found]
        dhe = [c for c in result.suites[legacy] if wire.suite_info(c).kex == "DHE"]
        if dhe:
            result.dh_bits = await dh_bits(prober, legacy, dhe)
    result.groups = found


async def _hygiene(prober: Prober, result: Enumeration) -> None:
    legacy = _best_legacy(result)
    if legacy:
        result.compression = await compression(prober, legacy)
    result.fallback_scsv = await fallback_scsv(prober, result.protocols)


def _best_legacy(result: Enumeration) -> str | None:
    legacy = [p for p in result.protocols if p not in ("SSLv2", "TLSv1.3") and result.suites.get(p)]
    return legacy[-1] if legacy else None
