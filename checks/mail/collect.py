"""Observe one mail domain: its DNS records, its MTA-STS policy, and its MX hosts' STARTTLS.

Every DNS question goes through the shared client (:mod:`checks.dns.client`) on the
process's probe loop (the tls family's, :func:`checks.tls.probe.run`), so one loop serves
every domain of a scan and the client's per-resolver bound holds across them: a thousand
domains do not open a thousand sockets at a resolver. The independent parts (MX, SPF,
DMARC, DKIM, MTA-STS, TLS-RPT) are asked concurrently.

Hosts the domain names (its MX hosts, ``mta-sts.<domain>``) are resolved with the
scan's resolvers (never the system's: the user chose them, and a lab or a split horizon
answers only there), then pass the scope guard on those addresses
(:meth:`audit.scope.ScopeGuard.admit_derived`); a refused MX is listed in
``mx_out_of_scope`` and never contacted, a refused policy host leaves ``mta_sts``
unknown, and a host the resolvers did not answer for leaves its facts unknown. An
admitted host is reached at the addresses the guard pinned.

How the MX hosts' TLS is judged: each admitted MX becomes the target ``smtp://MX:25`` and
is observed by the tls family's own collector; its ``tls.endpoint`` resource (or its
problem, keyed ``smtp://MX:25``) is returned in this domain's observation, so the TLS
packs (``anssi-tls``, ``certificates``...) judge it like any ``smtp://`` target. Its key
is the MX's, so an MX shared by several domains is one resource of the scan.

Unknown is not absent: a fact whose question got no answer (timeout, SERVFAIL, a policy
host that does not answer) goes to ``Resource.unknown`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from audit.models import JSONValue, Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext
from checks.mail import dkim, dmarc, mtasts, spf, targets
from checks.mail.dane import host_facts, summary
from checks.mail.docs import FACTS, RESOURCE_TYPE

DNS_TIMEOUT = 3.0
"""Per question (the client retries over TCP within it); capped by a share of ctx.timeout."""
BACKSTOP = 5.0
MAX_MX = 10
"""MX hosts followed (STARTTLS, DANE); more are listed but not probed."""
MX_DEPENDENT = ("dane", "mta_sts", "mx_out_of_scope", "smtp_targets")
"""Facts that need the MX set: unknown when it is."""


TLS_WORKERS = 8
"""MX endpoints observed at once in this process (each is a tls family collection)."""
TLS_MARGIN = 1.0
"""Seconds kept for the domain's own facts when the MX hosts' TLS is observed: a slow MX
costs its own endpoint's facts, never the domain's."""
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


def _deadline(ctx: CheckContext) -> float:
    value = _DEADLINE.get()
    return value if value is not None else asyncio.get_running_loop().time() + ctx.timeout


class Unknown(Exception):
    """A question that got no answer: the fact it was for stays unknown."""

    def __init__(self, message: str, reason: Reason = Reason.TIMEOUT) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Draft:
    """The facts of one domain as they are found, and the unknown ones with why."""

    facts: dict[str, JSONValue] = field(default_factory=dict)
    unknown: dict[str, Problem] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    """Facts whose observation is under way (unknown if the budget ends now)."""
    derived: list[Target] = field(default_factory=list)
    """SMTP targets whose TLS is being observed (a problem each if the budget ends now)."""
    extra: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def set_unknown(self, names: tuple[str, ...], problem: Problem) -> None:
        for name in names:
            self.facts.pop(name, None)
            self.pending.discard(name)
            self.unknown[name] = problem


def collect(target: Target, ctx: CheckContext) -> Observation:
    """Entry point of the family: never raises, problems are data."""
    from checks.tls import probe

    return probe.collect_on_loop(observed, target, ctx, BACKSTOP)


def start(target: Target, ctx: CheckContext) -> Future[Observation]:
    """The same observation, started on the probe loop (:attr:`CheckFamily.start`)."""
    from checks.tls import probe

    return probe.start(observed(target, ctx))


async def observed(target: Target, ctx: CheckContext) -> Observation:
    """The domain's observation within ``ctx.timeout``."""
    from checks.tls import probe

    return await probe.guarded("mail", target, _bounded(target, ctx))


async def _bounded(target: Target, ctx: CheckContext) -> Observation:
    """The observation within ``ctx.timeout``; past it, what was found is kept and every
    fact not yet found is unknown (timeout), each on its own account."""
    _DEADLINE.set(asyncio.get_running_loop().time() + ctx.timeout)
    draft = Draft(facts={"domain": target.host})
    try:
        async with asyncio.timeout(ctx.timeout):
            return await observe(target, ctx, draft)
    except TimeoutError:
        message = f"no answer within the observation's {ctx.timeout:g} s"
        top = [f.name for f in FACTS if "." not in f.name]
        cut = [n for n in top if n in draft.pending or n not in draft.facts]
        draft.set_unknown(
            tuple(n for n in cut if n not in draft.unknown),
            Problem(Reason.TIMEOUT, message, RESOURCE_TYPE),
        )
        seen = {r.key for r in draft.extra} | {p.key for p in draft.problems}
        draft.problems.extend(
            Problem(Reason.TIMEOUT, message, "tls.endpoint", key=t.uri)
            for t in draft.derived
            if t.uri not in seen
        )
        return _observation(target, draft)


def dns_settings(ctx: CheckContext) -> CheckContext:
    """The context whose ``dns`` block the DNS client and validator read: the scan's dns
    settings, with the mail block's own ``resolvers``/``dnssec_anchors`` over them."""
    own = {k: v for k, v in ctx.family_options("mail").items() if k in targets.DNS_OPTIONS}
    if not own:
        return ctx
    return replace(ctx, options={**ctx.options, "dns": {**ctx.family_options("dns"), **own}})


def client_for(ctx: CheckContext) -> Any:
    """The scan's DNS client for these resolvers, on the scan's DNS session (so the mail
    and dns families of one scan ask a shared question once)."""
    from checks.dns.client import DnsClient, resolvers_from, session_for

    resolvers = resolvers_from(dns_settings(ctx))
    timeout = max(0.5, min(DNS_TIMEOUT, ctx.timeout / 4))
    key = f"mail.client:{resolvers}:{timeout}"
    client = ctx.shared.get(key)
    if client is None:
        client = ctx.shared.setdefault(key, DnsClient(resolvers, timeout, session=session_for(ctx)))
    return client


async def observe(target: Target, ctx: CheckContext, draft: Draft | None = None) -> Observation:
    """Every fact of the domain, then the derived SMTP targets (into ``draft``)."""
    client = client_for(ctx)
    domain = target.host
    draft = draft if draft is not None else Draft(facts={"domain": domain})
    draft.pending.update(MX_DEPENDENT)  # complete only once the MX set has been followed
    # Each part gets a function that makes its coroutine, not the coroutine: a part
    # cancelled before it starts (the budget spent at once, the scan stopped) then leaves
    # no coroutine that was never awaited, which Python reports on stderr.
    await asyncio.gather(
        _part(draft, ("mx", "mx_records", "null_mx"), lambda: _mx(domain, client)),
        _part(draft, ("spf",), lambda: _wrap(spf.check_domain(domain, client.query), "spf")),
        _part(draft, ("dmarc",), lambda: _wrap(dmarc.check_domain(domain, client.query), "dmarc")),
        _part(draft, ("dkim",), lambda: _wrap(_dkim(target, ctx, client), "dkim")),
        _part(draft, ("mta_sts",), lambda: _mta_sts_txt(domain, client), settled=False),
        _part(draft, ("tls_rpt",), lambda: _tls_rpt(domain, client)),
    )
    if "mx" in draft.unknown:
        # Without the MX set, DANE, the derived targets and the policy's coverage are
        # unknown too, never "no MX, nothing to check".
        draft.set_unknown(MX_DEPENDENT, replace(draft.unknown["mx"], facts=MX_DEPENDENT))
    else:
        hosts = list(draft.facts.get("mx") or [])[:MAX_MX]
        await asyncio.gather(
            _part(draft, ("dane",), lambda: _dane(hosts, client, ctx)),
            _policy(draft, target, ctx, client),
            _smtp(draft, target, ctx, client, hosts),
        )
    return _observation(target, draft)


def _observation(target: Target, draft: Draft) -> Observation:
    resource = Resource(
        RESOURCE_TYPE, f"mail://{target.host}", target.uri, target.system,
        dict(draft.facts), dict(draft.unknown),
    )  # fmt: skip
    return Observation(target, (resource, *draft.extra), tuple(draft.problems))


async def _part(
    draft: Draft,
    names: tuple[str, ...],
    work: Callable[[], Awaitable[Mapping[str, JSONValue]]],
    *,
    settled: bool = True,
) -> None:
    """Run one part; its facts join the draft, or become unknown with the reason.
    ``settled`` false: a later stage completes them (they stay pending)."""
    draft.pending.update(names)
    try:
        found = await work()
    except Unknown as exc:
        draft.set_unknown(names, Problem(exc.reason, str(exc), RESOURCE_TYPE, facts=names))
        return
    draft.facts.update(found)
    if settled:
        draft.pending.difference_update(names)


_NO_ANSWER: dict[str, type[Exception]] = {
    "spf": spf.SpfUnknown,
    "dmarc": dmarc.DmarcUnknown,
    "dkim": dkim.DkimUnknown,
}
"""Each parser's own "no answer" exception."""


async def _wrap(work: Awaitable[dict[str, Any]], name: str) -> dict[str, Any]:
    """A parser's own "no answer" exception as :class:`Unknown`, its facts under its name
    (``work`` is awaited at once: it is made by the caller's function, as it starts)."""
    try:
        facts = await work
    except _NO_ANSWER[name] as exc:
        raise Unknown(str(exc), _reason(str(exc))) from None
    return {name: facts}


def _reason(message: str) -> Reason:
    return Reason.TIMEOUT if "timeout" in message else Reason.UNREACHABLE


async def _ask(client: Any, name: str, rdtype: str) -> Any:
    """One question whose answer must be known (NOERROR or NXDOMAIN), else :class:`Unknown`."""
    answer = await client.query(name, rdtype)
    if answer.error is not None:
        raise Unknown(f"{rdtype} {name}: {answer.error}", _reason(answer.error))
    if answer.rcode not in ("NOERROR", "NXDOMAIN"):
        raise Unknown(f"{rdtype} {name}: {answer.rcode} from the resolver", Reason.UNREACHABLE)
    return answer


async def _mx(domain: str, client: Any) -> dict[str, JSONValue]:
    """RFC 7505: a null MX is a single ``0 .``; it says the domain accepts no mail."""
    answer = await _ask(client, domain, "MX")
    records = []
    for text in answer.records:
        parts = text.split()
        if len(parts) == 2 and parts[0].isdigit():
            records.append({"preference": int(parts[0]), "host": parts[1].lower().rstrip(".")})
    records.sort(key=lambda r: (r["preference"], r["host"]))
    null_mx = len(records) == 1 and records[0]["host"] == ""
    hosts = list(dict.fromkeys(r["host"] for r in records if r["host"]))
    return {"mx": hosts, "mx_records": records, "null_mx": null_mx}


async def _dkim(target: Target, ctx: CheckContext, client: Any) -> dict[str, Any]:
    selectors = targets.selectors(target, ctx.family_options("mail"))
    return await dkim.check_domain(target.host, selectors, client.query)


async def _mta_sts_txt(domain: str, client: Any) -> dict[str, JSONValue]:
    answer = await _ask(client, f"_mta-sts.{domain}", "TXT")
    found = mtasts.txt_facts(answer.records)
    return {"mta_sts": {**found, "mode": None, "max_age": None, "mx_patterns": [],
                        "mx_covered": None, "policy_error": None}}  # fmt: skip


async def _tls_rpt(domain: str, client: Any) -> dict[str, JSONValue]:
    answer = await _ask(client, f"_smtp._tls.{domain}", "TXT")
    return {"tls_rpt": mtasts.tls_rpt_facts(answer.records)}


# --- DANE --------------------------------------------------------------------------------


async def _dane(hosts: list[str], client: Any, ctx: CheckContext) -> dict[str, JSONValue]:
    """TLSA per MX, counted only where DNSSEC is validated secure (RFC 7672 §2.2)."""
    try:
        anchors = _anchors(ctx)
    except (ImportError, ValueError) as exc:
        raise Unknown(f"DNSSEC cannot be validated: {exc}", Reason.NOT_IMPLEMENTED) from None
    found = await asyncio.gather(*(_dane_host(host, client, anchors) for host in hosts))
    return {"dane": summary(list(found))}


async def _dane_host(host: str, client: Any, anchors: Any) -> dict[str, JSONValue]:
    """The MX name's DNSSEC status (the dns family's validator, from the anchors), then
    its TLSA RRset, whose signature must verify with that zone's validated keys."""
    from checks.dns.dnssec import check_signed, validate_domain

    validation = await validate_domain(client, host, anchors)
    if validation.error is not None:
        raise Unknown(f"DNSSEC of {host}: {validation.reason}", _reason(validation.error))
    answer = await _ask(client, f"_25._tcp.{host}", "TLSA")
    status = validation.status or "indeterminate"
    if status == "secure" and answer.records:
        signed, _ = check_signed(answer, validation.keys, validation.zone or host)
        status = "secure" if signed else "bogus"
    return host_facts(host, answer.records, status)


_ANCHORS: dict[tuple[str | None, int, int], Any] = {}


def _anchors(ctx: CheckContext) -> Any:
    """The trust anchors the dns family validates from: ``--dnssec-anchors`` or the
    inventory's ``trust.dnssec_anchors`` (through the dns settings), else IANA's root KSKs.

    Read once per file version (a lab re-signed between two scans of one process has a
    new anchor in the same file)."""
    import os

    from checks.dns.dnssec import load_anchors

    value = dns_settings(ctx).family_options("dns").get("dnssec_anchors")
    path = str(value) if value else None
    try:
        stat = os.stat(path) if path else None
    except OSError:
        stat = None
    key = (path, stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)
    if key not in _ANCHORS:
        _ANCHORS.clear()
        _ANCHORS[key] = load_anchors(path)
    return _ANCHORS[key]


# --- hosts the domain names: MTA-STS policy, MX STARTTLS ----------------------------------


class Unresolved(Exception):
    """The scan's resolvers did not answer for a host's addresses: its facts are unknown."""


async def _admit(host: str, target: Target, how: str, ctx: CheckContext, client: Any) -> Target:
    """The scope guard's verdict on a host the domain names, on the addresses the scan's
    resolvers give for it (never the system's: the user chose the resolvers); raises
    ScopeError (outside the scope, contact nothing) or Unresolved (no answer)."""
    from audit.scope import ScopeGuard

    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        answer = await client.query(host, rdtype)
        if not answer.known:
            raise Unresolved(f"{host} {rdtype}: {answer.error}")
        found.extend(r for r in answer.records if r not in found)
    return ScopeGuard(ctx.scope).admit_derived(host, target, how, addresses=found)


async def _policy(draft: Draft, target: Target, ctx: CheckContext, client: Any) -> None:
    """Fetch the MTA-STS policy when the TXT says there is one."""
    sts = draft.facts.get("mta_sts")
    if not isinstance(sts, dict) or not sts.get("present"):
        draft.pending.discard("mta_sts")
        return
    await _fetch_into(draft, sts, f"mta-sts.{target.host}", target, ctx, client)
    draft.pending.discard("mta_sts")  # not on cancellation: then the budget ended first


async def _fetch_into(
    draft: Draft, sts: dict[str, Any], host: str, target: Target, ctx: CheckContext, client: Any
) -> None:
    """Admit the policy host, fetch the policy, and complete ``sts`` (or make it unknown)."""
    from audit.errors import ScopeError

    try:
        admitted = await _admit(host, target, "MTA-STS", ctx, client)
    except ScopeError as exc:
        problem = Problem(Reason.UNDECIDABLE, f"policy host not contacted: {exc}", RESOURCE_TYPE)
        draft.set_unknown(("mta_sts",), problem)
        return
    except Unresolved as exc:
        problem = Problem(Reason.UNREACHABLE, f"policy host not resolved: {exc}", RESOURCE_TYPE)
        draft.set_unknown(("mta_sts",), problem)
        return
    addresses = admitted.addresses
    port = targets.port(target, "mta_sts_port", targets.HTTPS_PORT)
    try:
        fetched = await mtasts.fetch_policy(host, addresses, port, ctx.ca_file, _io_timeout(ctx))
    except mtasts.Unanswered as exc:
        problem = Problem(Reason.UNREACHABLE, f"{host}: {exc}", RESOURCE_TYPE, facts=("mta_sts",))
        draft.set_unknown(("mta_sts",), problem)
        return
    sts.update(_policy_facts(fetched, draft.facts.get("mx")))


def _policy_facts(fetched: mtasts.Fetched, mx: Any) -> dict[str, JSONValue]:
    if fetched.error is not None:
        return {"policy_error": fetched.error}
    patterns = list(fetched.fields.get("mx", []))
    return {
        "mode": fetched.fields["mode"],
        "max_age": fetched.fields["max_age"],
        "mx_patterns": patterns,
        "mx_covered": mtasts.covered(list(mx or []), patterns),
    }


def _io_timeout(ctx: CheckContext) -> float:
    return max(1.0, min(10.0, ctx.timeout / 3))


async def _smtp(
    draft: Draft, target: Target, ctx: CheckContext, client: Any, hosts: list[str]
) -> None:
    """Admit each MX, then observe the admitted ones with the tls family's collector."""
    from audit.errors import ScopeError

    port = targets.port(target, "smtp_port", targets.SMTP_PORT)
    refused: list[str] = []
    derived: list[Target] = []
    for host in hosts:
        try:
            admitted = await _admit(host, target, "MX", ctx, client)
        except ScopeError:
            refused.append(host)
            continue
        except Unresolved as exc:
            endpoint = _smtp_target(host, port, (), target)
            reason = Problem(Reason.UNREACHABLE, f"MX not resolved: {exc}", "tls.endpoint")
            draft.problems.append(_keyed(reason, endpoint))
            continue
        if not admitted.addresses:  # never let the TLS probe resolve it another way
            endpoint = _smtp_target(host, port, (), target)
            reason = Problem(Reason.UNREACHABLE, f"MX {host} has no address", "tls.endpoint")
            draft.problems.append(_keyed(reason, endpoint))
            continue
        derived.append(_smtp_target(host, port, admitted.addresses, target))
    draft.facts["mx_out_of_scope"] = refused
    draft.facts["smtp_targets"] = [t.uri for t in derived]
    draft.pending.difference_update(("mx_out_of_scope", "smtp_targets"))
    draft.derived = derived
    for observation in await _observe_tls(derived, ctx):
        draft.extra.extend(
            replace(r, target=target.uri, system=target.system) for r in observation.resources
        )
        draft.problems.extend(_keyed(p, observation.target) for p in observation.problems)


def _smtp_target(host: str, port: int, addresses: tuple[str, ...], parent: Target) -> Target:
    return Target(
        uri=f"smtp://{host}:{port}",
        scheme="smtp",
        host=host,
        port=port,
        system=parent.system,
        addresses=addresses,
    )


def _keyed(problem: Problem, target: Target) -> Problem:
    """A derived target's problem belongs to its ``tls.endpoint``, not to the domain."""
    return replace(problem, resource_type="tls.endpoint", key=problem.key or target.uri)


async def _observe_tls(derived: list[Target], ctx: CheckContext) -> list[Observation]:
    """The tls family's observation of each derived target, on this loop, at most
    TLS_WORKERS at once in the process; cancelled with the domain when its budget ends."""
    if not derived:
        return []
    from checks.tls.collect import observed

    loop = asyncio.get_running_loop()
    left = _deadline(ctx) - loop.time()
    tls_ctx = replace(ctx, options={}, timeout=max(1.0, left - TLS_MARGIN))
    slots = _tls_slots(loop)

    async def one(endpoint: Target) -> Observation:
        async with slots:
            return await observed(endpoint, tls_ctx)

    return list(await asyncio.gather(*(one(t) for t in derived)))


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _tls_slots(loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
    """The process's bound on MX endpoints observed at once, for this loop (a semaphore
    belongs to one loop)."""
    found = _SLOTS.get(loop)
    if found is None:
        found = _SLOTS[loop] = asyncio.Semaphore(TLS_WORKERS)
    return found
