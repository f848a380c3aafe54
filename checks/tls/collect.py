"""Observe one TLS (or SMTP STARTTLS) target: resolve, probe, enumerate, describe.

Addresses: when the scope guard resolved the target (``Target.addresses``) those are
used and never re-resolved; otherwise the name is resolved here. The addresses are
tried in order and the first one that answers is enumerated: the resource says
which (``address``) and lists them all (``addresses``). One resource per target keeps
findings stable when DNS rotates its answers.

A fact that a probe could not decide is never reported from what was seen before it:
it goes to ``Resource.unknown`` with its reason, and the rules reading it end as
``error``. That covers the protocol probes (:func:`unanswered_protocols`) and every
enumeration cut short by a server that stopped answering (:func:`cut_facts`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

from audit.models import JSONValue, Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext
from checks.tls import probe, wire
from checks.tls.certificate import certificate_facts
from checks.tls.enumerate import Cut, Enumeration, enumerate_endpoint, probe_protocols
from checks.tls.http import Session, hsts_facts, http_redirect, tls_session
from checks.tls.probe import Endpoint, Outcome, Prober
from checks.tls.resumption import session_id_resumption, ticket_resumption
from checks.tls.targets import server_name

RESOURCE_TYPE = "tls.endpoint"
MAX_PROBE_TIMEOUT = 5.0
"""A single handshake never waits longer than this for the server's first flight."""
BACKSTOP = 5.0
"""Seconds past ``ctx.timeout`` after which a caller stops waiting for the probe loop."""
RETRY_SHARE = 0.8
"""Share of ``ctx.timeout`` within which a retried probe must end: the rest is left to
the probes that follow a successful retry, so patience never costs the whole
observation (a timeout of the target) rather than one fact."""


def collect(target: Target, ctx: CheckContext) -> Observation:
    """Entry point of the family: never raises, problems are data."""
    return probe.collect_on_loop(observed, target, ctx, BACKSTOP)


def start(target: Target, ctx: CheckContext) -> Future[Observation]:
    """The same observation, started on the probe loop (:attr:`CheckFamily.start`)."""
    return probe.start(observed(target, ctx))


async def observed(target: Target, ctx: CheckContext) -> Observation:
    """The endpoint's observation within ``ctx.timeout``."""
    return await probe.guarded("tls", target, _collect_within(target, ctx))


async def _collect_within(target: Target, ctx: CheckContext) -> Observation:
    try:
        async with asyncio.timeout(ctx.timeout):
            return await _collect(target, ctx)
    except TimeoutError:
        problem = Problem(Reason.TIMEOUT, f"no complete observation within {ctx.timeout:g} s")
        return Observation(target, problems=(problem,))


def probe_timeout(ctx: CheckContext) -> float:
    """Per-handshake timeout: a fraction of the scan's, capped."""
    return max(0.5, min(MAX_PROBE_TIMEOUT, ctx.timeout / 4))


async def _collect(target: Target, ctx: CheckContext) -> Observation:
    deadline = asyncio.get_running_loop().time() + ctx.timeout * RETRY_SHARE
    addresses = list(target.addresses) or await _resolve(target.host, probe_timeout(ctx))
    if not addresses:
        problem = Problem(Reason.UNREACHABLE, f"{target.host} does not resolve to any address")
        return Observation(target, problems=(problem,))
    failures: list[dict[str, Outcome]] = []
    for address in addresses:
        prober = _prober(target, address, ctx, deadline)
        first = await probe_protocols(prober)
        if _answered(first):
            resource = await _observe(target, ctx, prober, first, addresses)
            return Observation(target, resources=(resource,))
        failures.append(first)
    return Observation(target, problems=(_problem(failures, addresses),))


def _prober(target: Target, address: str, ctx: CheckContext, deadline: float) -> Prober:
    starttls = target.scheme if target.scheme != "tls" else None
    endpoint = Endpoint(address, target.port or 443, server_name(target), starttls)
    return Prober(endpoint, probe_timeout(ctx), deadline=deadline)


async def _resolve(host: str, timeout: float) -> list[str]:
    """Addresses of ``host``, or [] after ``timeout``.

    The lookup runs in a daemon thread, not the loop's executor: a resolver that never
    answers would otherwise hold that executor's workers, and the process at exit.
    """
    from audit.uri import resolve_in_background

    try:
        found = await asyncio.wait_for(asyncio.wrap_future(resolve_in_background(host)), timeout)
    except (OSError, UnicodeError, TimeoutError):
        return []
    return list(found)


def _answered(first: dict[str, Outcome]) -> bool:
    """The server spoke TLS at least once (accepted, or refused with an alert)."""
    return any(o.reply is not None for o in first.values())


_REASONS = {
    "refused": Reason.REFUSED,
    "timeout": Reason.TIMEOUT,
}


def _problem(failures: list[dict[str, Outcome]], addresses: list[str]) -> Problem:
    outcomes = [o for first in failures for o in first.values()]
    kinds = {o.failure or "" for o in outcomes}
    where = ", ".join(addresses)
    for kind in ("not_tls", "starttls"):
        if kind in kinds:
            message = next(o.message for o in outcomes if o.failure == kind)
            return Problem(Reason.UNREACHABLE, f"{where}: {message}")
    if len(kinds) == 1 and (only := next(iter(kinds))) in _REASONS:
        message = next(o.message for o in outcomes)
        return Problem(_REASONS[only], f"{where}: {message}")
    if kinds <= {"timeout", "closed", "reset", "downgraded"} and "timeout" in kinds:
        return Problem(Reason.TIMEOUT, f"{where}: no TLS answer within the probe timeout")
    summary = ", ".join(sorted(kinds - {""}))
    return Problem(Reason.UNREACHABLE, f"{where}: no TLS handshake answered ({summary})")


async def _observe(
    target: Target,
    ctx: CheckContext,
    prober: Prober,
    first: dict[str, Outcome],
    addresses: list[str],
) -> Resource:
    is_web = target.scheme == "tls"
    host_header = prober.endpoint.server_name or target.host
    legacy = any(_accepts(first, p) for p in ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2"))
    enumeration, (session, tickets), ids, redirect = await asyncio.gather(
        enumerate_endpoint(prober, first),
        _session_and_ticket(prober, host_header, is_web),
        session_id_resumption(prober.endpoint, prober.timeout) if legacy else _none(),
        _redirect(target, prober.endpoint.address, host_header, prober.timeout),
    )
    facts, unknown = _facts(target, ctx, prober, enumeration, session, addresses)
    facts["session_id_resumption"] = ids
    facts["session_ticket_resumption"] = tickets
    facts["http_redirect"] = redirect if is_web else None
    facts["probes"] = prober.count
    return Resource(RESOURCE_TYPE, target.uri, target.uri, target.system, facts, unknown)


def _accepts(first: dict[str, Outcome], protocol: str) -> bool:
    return protocol in first and first[protocol].is_accepted


async def _none() -> None:
    return None


async def _session_and_ticket(
    prober: Prober, host_header: str, is_web: bool
) -> tuple[Session, bool | None]:
    """The local library's handshake (chain, HTTP head), then a resumption of its ticket."""
    session = await tls_session(prober.endpoint, host_header, prober.timeout, http=is_web)
    return session, await ticket_resumption(prober.endpoint, session, prober.timeout)


async def _redirect(target: Target, address: str, host: str, timeout: float) -> bool | None:
    port = int(target.param("http_port", "80") or 0)
    if target.scheme != "tls" or port == 0:
        return None
    return await http_redirect(address, port, host, timeout)


def _facts(
    target: Target,
    ctx: CheckContext,
    prober: Prober,
    result: Enumeration,
    session: Session,
    addresses: list[str],
) -> tuple[dict[str, JSONValue], dict[str, Problem]]:
    unknown: dict[str, Problem] = {}
    facts: dict[str, JSONValue] = {
        "host": target.host,
        "port": target.port,
        "address": prober.endpoint.address,
        "addresses": addresses,
        "sni": prober.endpoint.server_name,
        "starttls": prober.endpoint.starttls,
        **suite_facts(result),
        **hygiene_facts(result),
    }
    unanswered = unanswered_protocols(result.first)
    if unanswered is not None:
        _forget(facts, unknown, PROTOCOL_FACTS, unanswered)
    for names, why in cut_facts(result.cuts):
        _forget(facts, unknown, names, why)
    facts["certificate"], problem = _certificate(result, session, prober, ctx)
    if problem:
        unknown["certificate"] = problem
    facts["hsts"] = hsts_facts(session) if target.scheme == "tls" else None
    if target.scheme == "tls" and session.error and not session.chain:
        unknown["hsts"] = Problem(Reason.NOT_IMPLEMENTED, session.error)
    return facts, unknown


def _forget(
    facts: dict[str, JSONValue],
    unknown: dict[str, Problem],
    names: tuple[str, ...],
    problem: Problem,
) -> None:
    """Move ``names`` from the facts to the unknown (the first reason found stays)."""
    for name in names:
        facts.pop(name, None)
        unknown.setdefault(name, problem)


SUITE_FACTS = (
    "cipher_suites",
    "forward_secrecy",
    "aead_only",
    "key_exchanges",
    "weakest_suite",
    "strongest_suite",
    "server_order",
)
"""The suite lists and everything read off them."""
PROTOCOL_FACTS = ("protocols", *SUITE_FACTS, "groups")
"""Facts that need an answer to every protocol probe: one probe left unanswered (a
timeout, bytes that are not TLS) means that protocol may be accepted, and calling the
endpoint "TLS 1.2 only" would be a silent pass (so would its groups, enumerated only
on accepted protocols)."""
CUT_FACTS: dict[str, tuple[str, ...]] = {
    "cipher_suites": SUITE_FACTS,
    "server_order": ("server_order",),
    "groups": ("groups",),
    "dh_bits": ("dh_bits",),
    "compression": ("compression",),
    "fallback_scsv": ("fallback_scsv",),
    "heartbleed": ("heartbeat", "heartbleed"),
}
"""For each enumeration that can be cut short, the facts it leaves unknown."""


def cut_facts(cuts: dict[str, Cut]) -> list[tuple[tuple[str, ...], Problem]]:
    """The facts each cut enumeration leaves unknown, with why.

    A probe that never got a TLS verdict (after its retries) may have been the one
    that would find RC4: what was found before it is a lower bound, not the list.
    """
    return [(CUT_FACTS[fact], _cut_problem(cut)) for fact, cut in cuts.items()]


def _cut_problem(cut: Cut) -> Problem:
    reason = Reason.TIMEOUT if cut.outcome.failure in ("timeout", "unsent") else Reason.UNREACHABLE
    return Problem(
        reason,
        f"the {cut.probe} probe got no TLS verdict ({cut.outcome.message}): "
        "the server stopped answering, so what it accepts is unknown",
    )


_UNDECIDED = {"timeout": Reason.TIMEOUT, "not_tls": Reason.UNREACHABLE}


def unanswered_protocols(first: dict[str, Outcome]) -> Problem | None:
    """Why the protocol facts are unknown, when some protocol probe got no verdict."""
    missing = [(p, o) for p, o in first.items() if o.failure in _UNDECIDED]
    if not missing:
        return None
    outcome = missing[0][1]
    names = ", ".join(p for p, _ in missing)
    return Problem(
        _UNDECIDED[str(outcome.failure)],
        f"no verdict from the {names} probe(s) ({outcome.message}): "
        "whether the server accepts them is unknown",
    )


def suite_facts(result: Enumeration) -> dict[str, JSONValue]:
    """Protocols, suites and what they imply."""
    accepted = [c for codes in result.suites.values() for c in codes]
    infos = [wire.suite_info(c) for c in dict.fromkeys(accepted)]
    ranked = sorted(infos, key=_strength)
    return {
        "protocols": result.protocols,
        "cipher_suites": {p: wire.names(codes) for p, codes in result.suites.items()},
        "server_order": result.server_order,
        "forward_secrecy": bool(infos) and all(i.forward_secret for i in infos),
        "aead_only": bool(infos) and all(i.aead for i in infos),
        "key_exchanges": sorted({i.kex for i in infos}),
        "weakest_suite": ranked[0].name if ranked else None,
        "strongest_suite": ranked[-1].name if ranked else None,
        "groups": [wire.group_name(g) for g in result.groups],
        "dh_bits": result.dh_bits,
    }


def _strength(info: wire.SuiteInfo) -> tuple[int, int, int, int]:
    weak_cipher = info.cipher in (
        "NULL",
        "RC4_40",
        "RC4_128",
        "DES",
        "DES40",
        "RC2_40_CBC",
        "RC2_CBC_40",
        "IDEA",
        "TRIPLE_DES_EDE",
        "DES_CBC_40",
    )
    return (
        0 if weak_cipher else 1,
        int(info.forward_secret),
        int(info.aead),
        info.cipher_bits or 0,
    )


def hygiene_facts(result: Enumeration) -> dict[str, JSONValue]:
    """Protocol hygiene observed from ServerHellos and the two extra probes."""
    legacy = result.legacy_reply()
    return {
        "secure_renegotiation": legacy.has_renegotiation_info if legacy else None,
        "extended_master_secret": legacy.has_extended_master_secret if legacy else None,
        "session_tickets": legacy.has_session_ticket if legacy else None,
        "compression": result.compression,
        "fallback_scsv": result.fallback_scsv,
        "heartbeat": result.heartbeat,
        "heartbleed": result.heartbleed,
        "ocsp_stapled": legacy.ocsp_stapled if legacy and legacy.certificates else None,
    }


def _certificate(
    result: Enumeration, session: Session, prober: Prober, ctx: CheckContext
) -> tuple[dict[str, Any] | None, Problem | None]:
    legacy = result.legacy_reply()
    chain = legacy.certificates if legacy and legacy.certificates else session.chain
    if not chain:
        why = session.error or "the server sent no certificate"
        return None, Problem(Reason.NOT_IMPLEMENTED, why)
    hostname = prober.endpoint.server_name or prober.endpoint.address
    try:
        facts = certificate_facts(chain, hostname, ctx.ca_file)
    except ValueError as error:
        return None, Problem(Reason.BUG, f"unparsable certificate: {error}"[:300])
    facts["ocsp_stapled"] = legacy.ocsp_stapled if legacy and legacy.certificates else None
    return facts, None
