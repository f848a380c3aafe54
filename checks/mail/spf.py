"""SPF (RFC 7208): find the domain's record, parse it, and count what evaluating it costs.

Why not evaluate it against a sender address: an audit has no sender. What a policy needs
to know is whether *any* evaluation can succeed, so every DNS-querying term of the whole
tree is counted, as a receiver evaluating a message that matches nothing would: ``include``,
``a``, ``mx``, ``ptr``, ``exists`` and a ``redirect`` that applies each cost one lookup
(RFC 7208 §4.6.4, limit 10), recursively through ``include`` and ``redirect``; a lookup that
returns NXDOMAIN or no records is *void* (limit 2). Both limits are permerrors in the RFC;
here the counts are reported as they are (up to :data:`MAX_LOOKUPS`), the faults go to
``errors``, and the policy decides.

A resolver that does not answer while the tree is walked raises :class:`SpfUnknown`: the
RFC calls it a temperror, the audit calls the whole ``spf`` fact unknown (never "absent",
never "within limits" on a guess).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

LOOKUP_LIMIT = 10
"""RFC 7208 §4.6.4: at most 10 DNS-querying terms per check_host() evaluation."""
VOID_LIMIT = 2
"""RFC 7208 §4.6.4: at most 2 void lookups (NXDOMAIN or an empty answer)."""
MX_LIMIT = 10
"""RFC 7208 §4.6.4: an ``mx`` term whose MX set holds more than 10 names is a permerror."""
MAX_LOOKUPS = 40
"""Walking stops here (a hostile or broken tree must not cost a scan hundreds of queries):
the count is then at least this, and the error says the walk was cut."""
MAX_RECORD = 4096
"""Bytes of a record kept (a TXT can carry 64 KiB; an SPF record that long is broken)."""

_VERSION = re.compile(r"^v=spf1(?: |$)", re.IGNORECASE)
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)
_MECHANISM = re.compile(r"^([+?~-]?)([a-z0-9]+)(.*)$", re.IGNORECASE)
_QUERYING = ("include", "a", "mx", "ptr", "exists")
_KNOWN = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_QUALIFIERS = {"": "+", "+": "+", "-": "-", "~": "~", "?": "?"}
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$", re.IGNORECASE)
_MACRO = re.compile(r"%(?:\{([a-z])([0-9]*)(r?)([.+,/_=-]*)\}|%|_|-)", re.IGNORECASE)


class AnswerLike(Protocol):
    """What :class:`checks.dns.client.Answer` offers the evaluator."""

    @property
    def rcode(self) -> str | None: ...
    @property
    def records(self) -> tuple[str, ...]: ...
    @property
    def error(self) -> str | None: ...


Query = Callable[[str, str], Awaitable[AnswerLike]]
"""``await query(name, rdtype)``: the DNS client's ``query``."""


class SpfUnknown(Exception):
    """A lookup the evaluation needed got no answer: the fact stays unknown."""


@dataclass
class Walk:
    """What walking one domain's SPF tree found."""

    lookups: int = 0
    void_lookups: int = 0
    errors: list[str] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    cut: bool = False

    def error(self, message: str) -> None:
        if message not in self.errors and len(self.errors) < 20:
            self.errors.append(message)


@dataclass(frozen=True)
class Term:
    """One term of a record: a mechanism (with its qualifier) or a modifier."""

    kind: str
    """``mechanism`` or ``modifier``."""
    name: str
    qualifier: str = "+"
    value: str = ""
    """The domain-spec (mechanisms) or the value (modifiers), without the CIDR length."""


def select_record(texts: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """The one SPF record among a name's TXT strings (RFC 7208 §4.5), and faults.

    Several records are a permerror: no record is used then.
    """
    found = [t for t in texts if _VERSION.match(t.strip())]
    if len(found) > 1:
        return None, [f"{len(found)} SPF records published (RFC 7208 §4.5: permerror)"]
    if not found:
        return None, []
    record = found[0].strip()
    if len(record) > MAX_RECORD:
        return record[:MAX_RECORD], ["record longer than 4096 characters: not evaluated"]
    return record, []


def parse(record: str) -> tuple[list[Term], list[str]]:
    """Terms of a record (its ``v=spf1`` dropped) and syntax faults (each a permerror)."""
    terms: list[Term] = []
    errors: list[str] = []
    for token in record.split()[1:]:
        term = _term(token)
        if isinstance(term, str):
            errors.append(term)
        else:
            terms.append(term)
    for name in ("redirect", "exp"):
        if sum(1 for t in terms if t.kind == "modifier" and t.name == name) > 1:
            errors.append(f"modifier {name}= appears more than once (RFC 7208 §6)")
    return terms, errors


def _term(token: str) -> Term | str:
    modifier = _MODIFIER.match(token)
    if modifier and ":" not in modifier.group(1):
        return Term("modifier", modifier.group(1).lower(), value=modifier.group(2))
    match = _MECHANISM.match(token)
    if not match or match.group(2).lower() not in _KNOWN:
        return f"unknown term {token[:64]!r} (RFC 7208 §4.6.1: permerror)"
    qualifier, name, rest = match.group(1), match.group(2).lower(), match.group(3)
    fault = _mechanism_fault(name, rest)
    if fault:
        return f"{token[:64]!r}: {fault}"
    return Term("mechanism", name, _QUALIFIERS[qualifier], _domain_part(name, rest))


def _mechanism_fault(name: str, rest: str) -> str | None:
    """Why a mechanism's argument does not follow RFC 7208 §5's grammar (None: it does)."""
    if name == "all":
        return "all takes no argument" if rest else None
    if name in ("include", "exists"):
        return None if rest.startswith(":") and len(rest) > 1 else f"{name} needs :domain"
    if name in ("ip4", "ip6"):
        return _address_fault(name, rest)
    return _domain_cidr_fault(name, rest)


def _domain_cidr_fault(name: str, rest: str) -> str | None:
    """``a``, ``mx`` and ``ptr``: an optional ``:domain``, then a CIDR length (not ptr)."""
    if rest and not rest.startswith((":", "/")):
        return "unexpected text after the mechanism"
    domain, _, cidr = rest.lstrip(":").partition("/")
    if rest.startswith(":") and not domain:
        return "empty domain"
    if not cidr:
        return None
    return "ptr takes no CIDR length" if name == "ptr" else _cidr_fault(rest[rest.index("/") :])


def _address_fault(name: str, rest: str) -> str | None:
    if not rest.startswith(":"):
        return f"{name} needs :address"
    try:
        net = ipaddress.ip_network(rest[1:], strict=False)
    except ValueError:
        return f"{rest[1:]!r} is not an {'IPv4' if name == 'ip4' else 'IPv6'} network"
    if net.version != (4 if name == "ip4" else 6):
        return f"{rest[1:]!r} is not an {'IPv4' if name == 'ip4' else 'IPv6'} network"
    return None


def _cidr_fault(text: str) -> str | None:
    """``/n`` for IPv4, ``//n`` for IPv6, or ``/n//m`` (RFC 7208 §5.6)."""
    match = re.fullmatch(r"(?:/(\d{1,2}))?(?://(\d{1,3}))?", text)
    if not match or not (match.group(1) or match.group(2)):
        return f"bad CIDR length {text!r}"
    if match.group(1) and int(match.group(1)) > 32:
        return f"IPv4 CIDR length {match.group(1)} above 32"
    if match.group(2) and int(match.group(2)) > 128:
        return f"IPv6 CIDR length {match.group(2)} above 128"
    return None


def _domain_part(name: str, rest: str) -> str:
    if name in ("ip4", "ip6", "all"):
        return rest[1:] if rest.startswith(":") else rest
    return rest[1:].split("/", maxsplit=1)[0] if rest.startswith(":") else ""


def expand(spec: str, domain: str) -> str | None:
    """A domain-spec with its macros expanded, when they need no sender (RFC 7208 §7).

    ``%{d}`` and ``%{o}`` are the current domain (with the transformers), ``%%``, ``%_``
    and ``%-`` literal; a macro that needs the sender or its address (``%{i}``,
    ``%{s}``, ``%{l}``...) cannot be expanded in an audit: None.
    """
    failed = False

    def one(match: re.Match[str]) -> str:
        nonlocal failed
        text = match.group(0)
        if text in ("%%", "%_", "%-"):
            return {"%%": "%", "%_": " ", "%-": "%20"}[text]
        letter, digits, reverse, delims = match.groups()
        if letter.lower() not in ("d", "o"):
            failed = True
            return ""
        parts = re.split("[" + re.escape(delims or ".") + "]", domain)
        if reverse:
            parts.reverse()
        if digits:
            parts = parts[-int(digits) :] if int(digits) else parts
        return ".".join(parts)

    expanded = _MACRO.sub(one, spec)
    return None if failed or "%" in expanded else expanded


def valid_domain(name: str) -> bool:
    """A name a query may be asked for (RFC 7208 §7.1: toplabel not all digits)."""
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or len(labels) < 2 or labels[-1].isdigit():
        return False
    return all(_LABEL.match(label) for label in labels)


async def check_domain(domain: str, query: Query) -> dict[str, Any]:
    """The ``spf`` fact of a domain (raises :class:`SpfUnknown` when DNS did not answer)."""
    answer = await query(domain, "TXT")
    if answer.error is not None:
        raise SpfUnknown(f"TXT {domain}: {answer.error}")
    if answer.rcode not in ("NOERROR", "NXDOMAIN"):
        raise SpfUnknown(f"TXT {domain}: {answer.rcode} from the resolver")
    record, errors = select_record(answer.records)
    facts: dict[str, Any] = {
        "present": record is not None,
        "record": record,
        "all": None,
        "lookups": 0,
        "void_lookups": 0,
        "errors": errors,
    }
    if record is None:
        return facts
    walk = Walk(errors=list(errors))
    facts["all"] = await _evaluate(record, domain, query, walk, (domain,))
    if walk.lookups > LOOKUP_LIMIT:
        walk.error(f"{walk.lookups} DNS-querying terms, above the limit of 10 (RFC 7208 §4.6.4)")
    if walk.void_lookups > VOID_LIMIT:
        walk.error(f"{walk.void_lookups} void lookups, above the limit of 2 (RFC 7208 §4.6.4)")
    facts.update(lookups=walk.lookups, void_lookups=walk.void_lookups, errors=walk.errors)
    facts["includes"] = walk.includes
    return facts


async def _evaluate(
    record: str, domain: str, query: Query, walk: Walk, chain: tuple[str, ...]
) -> str | None:
    """Walk one record; return the qualifier of its ``all`` (``-all``...), following a
    ``redirect`` when it has none (RFC 7208 §6.1), or None."""
    terms, errors = parse(record)
    for message in errors:
        walk.error(message)
    qualifier: str | None = None
    for term in terms:
        if term.kind == "mechanism" and term.name == "all":
            qualifier = f"{term.qualifier}all"
            break  # always matches: what follows is never evaluated (RFC 7208 §5.1)
        if term.kind == "mechanism" and term.name in _QUERYING:
            await _mechanism(term, domain, query, walk, chain)
    redirect = next((t for t in terms if t.kind == "modifier" and t.name == "redirect"), None)
    if qualifier is None and redirect is not None:
        return await _redirect(redirect.value, domain, query, walk, chain)
    return qualifier


async def _mechanism(
    term: Term, domain: str, query: Query, walk: Walk, chain: tuple[str, ...]
) -> None:
    if not _count(walk):
        return
    target = expand(term.value, domain) if term.value else domain
    if target is None or term.name == "ptr":
        return  # needs the sender's address: counted, not queried
    if not valid_domain(target):
        walk.error(f"{term.name}:{target[:64]} is not a valid domain name")
        return
    if term.name == "include":
        await _include(target, query, walk, chain)
    elif term.name == "mx":
        await _mx(target, query, walk)
    else:
        await _addresses(target, query, walk, ("A",) if term.name == "exists" else ("A", "AAAA"))


def _count(walk: Walk) -> bool:
    """One more DNS-querying term; False once the walk has reached its hard stop."""
    if walk.cut:
        return False
    walk.lookups += 1
    if walk.lookups >= MAX_LOOKUPS:
        walk.cut = True
        walk.error(f"more than {MAX_LOOKUPS} DNS-querying terms: the walk was stopped")
    return True


async def _include(target: str, query: Query, walk: Walk, chain: tuple[str, ...]) -> None:
    if target in chain:
        walk.error(f"include:{target} loops back to a record already being evaluated")
        return
    walk.includes.append(target)
    record = await _fetch(target, query, walk)
    if record is None:
        walk.error(f"include:{target} has no SPF record (RFC 7208 §5.2: permerror)")
        return
    await _evaluate(record, target, query, walk, (*chain, target))


async def _redirect(
    spec: str, domain: str, query: Query, walk: Walk, chain: tuple[str, ...]
) -> str | None:
    if not _count(walk):
        return None
    target = expand(spec, domain)
    if target is None or not valid_domain(target):
        walk.error(f"redirect={spec[:64]} is not a usable domain")
        return None
    if target in chain:
        walk.error(f"redirect={target} loops back to a record already being evaluated")
        return None
    record = await _fetch(target, query, walk)
    if record is None:
        walk.error(f"redirect={target} has no SPF record (RFC 7208 §6.1: permerror)")
        return None
    return await _evaluate(record, target, query, walk, (*chain, target))


async def _fetch(name: str, query: Query, walk: Walk) -> str | None:
    answer = await _ask(name, "TXT", query)
    if _is_void(answer):
        walk.void_lookups += 1
    record, errors = select_record(answer.records)
    for message in errors:
        walk.error(f"{name}: {message}")
    return record


async def _mx(target: str, query: Query, walk: Walk) -> None:
    answer = await _ask(target, "MX", query)
    if _is_void(answer):
        walk.void_lookups += 1
    if len(answer.records) > MX_LIMIT:
        walk.error(f"mx:{target} has {len(answer.records)} MX names, above 10 (RFC 7208 §4.6.4)")


async def _addresses(target: str, query: Query, walk: Walk, kinds: tuple[str, ...]) -> None:
    answers = [await _ask(target, kind, query) for kind in kinds]
    if all(_is_void(a) for a in answers):
        walk.void_lookups += 1


async def _ask(name: str, rdtype: str, query: Query) -> AnswerLike:
    answer = await query(name, rdtype)
    if answer.error is not None:
        raise SpfUnknown(f"{rdtype} {name}: {answer.error}")
    if answer.rcode not in ("NOERROR", "NXDOMAIN"):
        raise SpfUnknown(f"{rdtype} {name}: {answer.rcode} from the resolver")
    return answer


def _is_void(answer: AnswerLike) -> bool:
    """RFC 7208 §4.6.4: NXDOMAIN, or NOERROR with no answer."""
    return answer.rcode == "NXDOMAIN" or not answer.records
