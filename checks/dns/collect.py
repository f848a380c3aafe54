"""Observe one ``dns://DOMAIN``: its zone's SOA, nameservers, DNSSEC, CAA, transfer, recursion.

Every question goes through :class:`checks.dns.client.DnsClient` on the process's probe
loop (:func:`checks.tls.probe.run`, which the mail family's questions share), with the
scan's DNS session, so the questions every domain has in common (the root's and the
TLD's keys, a shared nameserver's addresses) are asked once per scan; the resolver's
questions run concurrently. Two probes go to the domain's nameservers
themselves (an AXFR, and a recursive question for the root's NS), and only to those the
scope guard admits (:meth:`audit.scope.ScopeGuard.admit_derived`, by address, or by name
when a declared domain holds it): a nameserver outside the scope is listed, not probed,
and what it would have said stays unknown (never "closed").

Unknown is not absent: a question nobody answered makes the facts that needed it unknown
(``Resource.unknown``) with the reason, so the rules reading them end ``error``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from audit.models import Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext
from checks.dns.client import DEFAULT_PORT, Answer, DnsClient, resolvers_from, session_for
from checks.dns.dnssec import Anchors, check_signed, load_anchors, validate_domain

RESOURCE_TYPE = "dns.zone"
QUERY_TIMEOUT_S = 5.0
BACKSTOP = 5.0
"""Seconds past ``ctx.timeout`` after which the caller stops waiting for the loop."""
"""At most this long per question, and at most a third of the target's budget, so one
silent server leaves time for the other questions (a chain walk asks several in turn)."""
MAX_NAMESERVERS = 20
"""Nameservers probed at most (an NS RRset is untrusted input)."""


@dataclass(frozen=True)
class Settings:
    """The family's settings, as ``validate_options`` accepted them."""

    resolvers: tuple[tuple[str, int], ...] | None
    anchors: str | None
    nameserver_port: int


def settings(ctx: CheckContext) -> Settings:
    """Resolvers, anchors and the port nameservers are probed on, from the options."""
    block = ctx.family_options("dns")
    anchors = block.get("dnssec_anchors")
    port = block.get("nameserver_port", DEFAULT_PORT)
    return Settings(resolvers_from(ctx), str(anchors) if anchors else None, int(port))


def collect(target: Target, ctx: CheckContext) -> Observation:
    """One ``dns.zone`` resource, or a problem saying why there is none."""
    from checks.tls import probe

    return probe.collect_on_loop(observed, target, ctx, BACKSTOP)


def start(target: Target, ctx: CheckContext) -> Future[Observation]:
    """The same observation, started on the probe loop (:attr:`CheckFamily.start`)."""
    from checks.tls import probe

    return probe.start(observed(target, ctx))


async def observed(target: Target, ctx: CheckContext) -> Observation:
    """The zone's observation within ``ctx.timeout``."""
    from checks.tls import probe

    return await probe.guarded("dns", target, _within(target, ctx))


async def _within(target: Target, ctx: CheckContext) -> Observation:
    try:
        resource, problems = await asyncio.wait_for(
            _observe(target, ctx, settings(ctx)), ctx.timeout
        )
    except TimeoutError:
        problem = Problem(Reason.TIMEOUT, f"no complete observation within {ctx.timeout:g} s")
        return Observation(target, problems=(problem,))
    resources = (resource,) if resource is not None else ()
    return Observation(target, resources, tuple(problems))


def _reason(answer: Answer) -> Reason:
    return _reason_of(answer.error or "")


def _reason_of(error: str) -> Reason:
    """A silent server is a timeout; anything else that kept the answer away, unreachable."""
    return Reason.TIMEOUT if error.startswith("timeout") else Reason.UNREACHABLE


async def _observe(
    target: Target, ctx: CheckContext, conf: Settings
) -> tuple[Resource | None, list[Problem]]:
    client = DnsClient(
        conf.resolvers, min(QUERY_TIMEOUT_S, ctx.timeout / 3), session=session_for(ctx)
    )
    domain = target.host
    soa = await client.query(domain, "SOA")
    if not soa.known:
        return None, [Problem(_reason(soa), f"{domain} SOA: {soa.error}")]
    if soa.rcode == "NXDOMAIN":
        return None, [Problem(Reason.NOT_FOUND, f"{domain} does not exist (NXDOMAIN)")]
    if soa.rcode != "NOERROR":
        return None, [
            Problem(Reason.UNREACHABLE, f"{domain} SOA: the resolver answered {soa.rcode}")
        ]
    zone, soa_facts = _soa(soa, domain)
    facts: dict[str, Any] = {"domain": domain, "zone": zone, "soa": soa_facts}
    unknown: dict[str, Problem] = {}
    try:
        anchors: Anchors | None = load_anchors(conf.anchors)
    except ValueError as exc:
        anchors = None
        unknown["dnssec"] = Problem(Reason.UNDECIDABLE, str(exc))
    ns_task = asyncio.create_task(_nameservers(client, zone))
    caa_task = asyncio.create_task(_caa(client, domain))
    dnssec_task = asyncio.create_task(_dnssec(client, zone, anchors)) if anchors else None
    ns = await ns_task
    if isinstance(ns, Problem):
        for name in _NS_FACTS:
            unknown[name] = ns
    else:
        facts.update(_ns_facts(ns))
        await _probe(client, target, ctx, conf, zone, ns, facts, unknown)
    caa = await caa_task
    if isinstance(caa, Problem):
        unknown["caa"] = caa
    else:
        facts["caa"] = caa
    if dnssec_task is not None:
        dnssec = await dnssec_task
        if isinstance(dnssec, Problem):
            unknown["dnssec"] = dnssec
        else:
            facts["dnssec"] = dnssec
    key = f"dns://{domain}"
    return Resource(RESOURCE_TYPE, key, target.uri, target.system, facts, unknown), []


_NS_FACTS = (
    "nameservers",
    "nameserver_count",
    "nameserver_networks",
    "nameserver_network_count",
    "zone_transfer_open",
    "zone_transfer_servers",
    "recursion_open",
    "recursion_servers",
)


def _soa(answer: Answer, domain: str) -> tuple[str, dict[str, Any] | None]:
    """The zone apex and its SOA fields (from the answer, or the authority section when
    ``domain`` is a name inside a zone)."""
    if answer.parsed is None and answer.records:
        # Read plainly (checks.dns.wire): the first SOA of the answer section, owned by
        # the name asked, in the presentation form dnspython gives below.
        return _soa_facts(answer.records[0], answer.name)
    import dns.rdatatype

    for section in (answer.message.answer, answer.message.authority):
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.SOA:
                return _soa_facts(rrset[0].to_text(), rrset.name.to_text())
    return domain, None


def _soa_facts(text: str, owner: str) -> tuple[str, dict[str, Any]]:
    """The zone and the fields of an SOA record in presentation form (``MNAME RNAME
    SERIAL REFRESH RETRY EXPIRE MINIMUM``; names escaped, so never holding a space)."""
    mname, rname, serial, refresh, retry, expire, minimum = text.split(" ")
    return _apex(owner), {
        "mname": _apex(mname),
        "rname": _apex(rname),
        "serial": int(serial),
        "refresh": int(refresh),
        "retry": int(retry),
        "expire": int(expire),
        "minimum": int(minimum),
    }


def _apex(name: str) -> str:
    """A name as dnspython's ``to_text(omit_final_dot=True).lower()`` writes it."""
    return name.lower().removesuffix(".") or "."


@dataclass
class _Ns:
    name: str
    addresses: list[str]
    error: str | None = None


async def _nameservers(client: DnsClient, zone: str) -> list[_Ns] | Problem:
    answer = await client.query(zone, "NS")
    if not answer.known:
        return Problem(_reason(answer), f"{zone} NS: {answer.error}")
    if answer.rcode != "NOERROR":
        return Problem(Reason.UNREACHABLE, f"{zone} NS: the resolver answered {answer.rcode}")
    names = sorted({r.lower().rstrip(".") for r in answer.records})[:MAX_NAMESERVERS]

    async def addresses(name: str) -> _Ns:
        found = await asyncio.gather(client.query(name, "A"), client.query(name, "AAAA"))
        errors = [a.error for a in found if a.error]
        listed = sorted({r for a in found for r in a.records if _is_address(r)}, key=_order)
        return _Ns(name, listed, errors[0] if errors and not listed else None)

    return list(await asyncio.gather(*(addresses(n) for n in names)))


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _order(address: str) -> tuple[int, Any]:
    parsed = ipaddress.ip_address(address)
    return (parsed.version, parsed)


def _network(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address is in: a coarse stand-in for "another
    network", as the distinct-networks rule needs."""
    parsed = ipaddress.ip_address(address)
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _ns_facts(servers: Sequence[_Ns]) -> dict[str, Any]:
    networks = sorted({_network(a) for s in servers for a in s.addresses})
    return {
        "nameservers": [{"name": s.name, "addresses": list(s.addresses)} for s in servers],
        "nameserver_count": len(servers),
        "nameserver_networks": networks,
        "nameserver_network_count": len(networks),
    }


async def _admitted(target: Target, ctx: CheckContext, server: _Ns) -> tuple[list[str], str | None]:
    """The addresses of ``server`` the scope guard admits, and why the others are not."""
    from audit.errors import ScopeError
    from audit.scope import ScopeGuard

    guard = ScopeGuard(ctx.scope)
    how = f"NS {server.name}"
    admitted: list[str] = []
    refusal: str | None = None
    for address in server.addresses:
        try:
            guard.admit_derived(address, target, how)
        except ScopeError as exc:
            refusal = str(exc)
            continue
        admitted.append(address)
    if len(admitted) < len(server.addresses) and _under(server.name, ctx.scope.domains):
        try:  # a declared domain holds the name: its addresses (from our resolvers) follow
            guard.admit_derived(server.name, target, "NS", addresses=server.addresses)
        except ScopeError as exc:
            refusal = str(exc)
        else:
            return list(server.addresses), None
    return admitted, refusal if len(admitted) < len(server.addresses) else None


def _under(name: str, domains: Sequence[str]) -> bool:
    return any(name == d or name.endswith("." + d) for d in domains)


async def _probe(
    client: DnsClient,
    target: Target,
    ctx: CheckContext,
    conf: Settings,
    zone: str,
    servers: Sequence[_Ns],
    facts: dict[str, Any],
    unknown: dict[str, Problem],
) -> None:
    """AXFR and recursion, asked of every admitted nameserver address."""
    jobs: list[tuple[str, str, Any, Any]] = []
    gaps: list[Problem] = []
    for server in servers:
        if not server.addresses:
            why = server.error or "it has no address"
            gaps.append(Problem(Reason.UNREACHABLE, f"nameserver {server.name}: {why}"))
            continue
        admitted, refusal = await _admitted(target, ctx, server)
        if refusal:
            gaps.append(Problem(Reason.UNDECIDABLE, f"not probed (outside the scope): {refusal}"))
        for address in admitted:
            where = (address, conf.nameserver_port)
            jobs.append(
                (
                    server.name,
                    address,
                    client.query_at(where, zone, "AXFR"),
                    client.query_at(where, ".", "NS", recurse=True),
                )
            )
    results = await asyncio.gather(*(j[2] for j in jobs), *(j[3] for j in jobs))
    axfrs, recursions = results[: len(jobs)], results[len(jobs) :]
    _verdict(
        "zone_transfer",
        [
            (j[0], j[1], a, a.known and a.rcode == "NOERROR" and bool(a.records))
            for j, a in zip(jobs, axfrs, strict=True)
        ],
        gaps,
        facts,
        unknown,
    )
    _verdict(
        "recursion",
        [(j[0], j[1], a, a.known and _recurses(a)) for j, a in zip(jobs, recursions, strict=True)],
        gaps,
        facts,
        unknown,
    )


def _recurses(answer: Answer) -> bool:
    """It answered a question outside its zone for us, saying it recursed (RA)."""
    return answer.rcode == "NOERROR" and "RA" in answer.flags and bool(answer.records)


def _verdict(
    prefix: str,
    outcomes: Sequence[tuple[str, str, Answer, bool]],
    gaps: Sequence[Problem],
    facts: dict[str, Any],
    unknown: dict[str, Problem],
) -> None:
    """True as soon as one server said yes; False only when every server said no."""
    flag, servers = f"{prefix}_open", f"{prefix}_servers"
    yes = [f"{name} ({address})" for name, address, _, said in outcomes if said]
    silent = [
        Problem(_reason(a), f"nameserver {name} ({address}): {a.error}")
        for name, address, a, _ in outcomes
        if not a.known
    ]
    missing = [*gaps, *silent]
    if yes or not missing:
        facts[flag] = bool(yes)
        facts[servers] = yes
        return
    if not outcomes and not missing:
        missing = [Problem(Reason.UNDECIDABLE, "no nameserver to probe")]
    problem = Problem(missing[0].reason, "; ".join(p.message for p in missing[:3]))
    unknown[flag] = problem
    unknown[servers] = problem


async def _caa(client: DnsClient, domain: str) -> dict[str, Any] | Problem:
    """The relevant CAA RRset (RFC 8659 §3): the domain's, else its parent's, and so on
    up to (not including) the root."""
    import dns.rdatatype

    labels = domain.split(".")
    for index in range(len(labels)):
        name = ".".join(labels[index:])
        answer = await client.query(name, "CAA")
        if not answer.known:
            return Problem(_reason(answer), f"{name} CAA: {answer.error}")
        if answer.rcode not in {"NOERROR", "NXDOMAIN"}:
            return Problem(Reason.UNREACHABLE, f"{name} CAA: the resolver answered {answer.rcode}")
        if not answer.records:
            continue
        rdatas = [
            rd
            for rrset in answer.message.answer
            if rrset.rdtype == dns.rdatatype.CAA
            for rd in rrset
        ]
        if rdatas:
            return _caa_facts(name, rdatas)
    return {"present": False, "found_at": None, "issue": [], "issuewild": [], "iodef": []}


def _caa_facts(name: str, rdatas: Sequence[Any]) -> dict[str, Any]:
    def values(tag: str) -> list[str]:
        return sorted(
            rd.value.decode("utf-8", "replace")
            for rd in rdatas
            if rd.tag.decode("ascii", "replace").lower() == tag
        )

    return {
        "present": True,
        "found_at": name,
        "issue": values("issue"),
        "issuewild": values("issuewild"),
        "iodef": values("iodef"),
    }


async def _dnssec(client: DnsClient, zone: str, anchors: Anchors) -> dict[str, Any] | Problem:
    """Status from the validating walk; algorithms, digests, denial and expiry as served."""
    import dns.rdatatype

    validation, dnskey, ds, param, soa = await asyncio.gather(
        validate_domain(client, zone, anchors),
        client.query(zone, "DNSKEY"),
        client.query(zone, "DS"),
        client.query(zone, "NSEC3PARAM"),
        client.query(zone, "SOA"),
    )
    if validation.error is not None:
        return Problem(_reason_of(validation.error), validation.reason)
    for answer in (dnskey, ds, param, soa):
        if not answer.known:
            return Problem(_reason(answer), f"{zone} {answer.rdtype}: {answer.error}")
    keys = _rdatas(dnskey, dns.rdatatype.DNSKEY)
    expirations = [int(s.expiration) for a in (dnskey, soa) for s in a.rrsigs]
    status = validation.status
    if status == "secure":
        signed, _ = check_signed(soa, validation.keys, validation.zone or zone)
        if not signed:
            status, validation.reason = "bogus", f"the SOA of {zone} has no valid signature"
    denial, iterations, salt = None, None, None
    params = _rdatas(param, dns.rdatatype.NSEC3PARAM)
    if params:
        denial, iterations = "nsec3", int(params[0].iterations)
        salt = params[0].salt.hex() or None
    elif keys:
        denial = "nsec"
    now = time.time()
    return {
        "status": status,
        "reason": validation.reason,
        "algorithms": sorted({int(k.algorithm) for k in keys}),
        "ds_digest_types": sorted({int(r.digest_type) for r in _rdatas(ds, dns.rdatatype.DS)}),
        "denial": denial,
        "nsec3_iterations": iterations,
        "nsec3_salt": salt,
        "signature_expires_in_days": (
            round((min(expirations) - now) / 86400, 1) if expirations else None
        ),
    }


def _rdatas(answer: Answer, rdtype: int) -> list[Any]:
    if not answer.records or answer.message is None:
        return []
    return [rd for rrset in answer.message.answer if rrset.rdtype == rdtype for rd in rrset]
