"""DMARC (RFC 7489): the policy record at ``_dmarc.<domain>``, and who may receive reports.

Policy discovery (§6.6.3) keeps the TXT records that start with ``v=DMARC1``; several, or
none, mean that DMARC does not apply. The organisational-domain fallback of §6.6.3 needs the
Public Suffix List, which Rempart does not ship: a domain without its own record is
reported as without DMARC (``present`` false), which is what a policy on the audited
domain itself should say anyway.

External report destinations (§7.1): a ``rua`` address in another organisation receives
the domain's reports only if that organisation publishes ``<domain>._report._dmarc.<rua
domain>`` with ``v=DMARC1``. Without the Public Suffix List, a destination is *internal*
when it is the domain, one of its subdomains or one of its parents, and *external*
otherwise; each external one is checked.
"""

from __future__ import annotations

import re
from typing import Any

from checks.mail.spf import Query, valid_domain

_VERSION = re.compile(r"^v\s*=\s*DMARC1\s*(;|$)", re.IGNORECASE)
POLICIES = ("none", "quarantine", "reject")
MAX_URIS = 20
"""Report addresses kept per tag (untrusted input stays bounded)."""


class DmarcUnknown(Exception):
    """The resolver did not answer: the ``dmarc`` fact stays unknown."""


def parse_tags(record: str) -> dict[str, str]:
    """``tag=value`` pairs separated by ``;`` (RFC 7489 §6.4); names lower-cased, the
    first occurrence of a tag kept."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


def mailto_domains(value: str | None) -> list[str]:
    """Domains of the ``mailto:`` addresses of a ``rua``/``ruf`` list (size suffix dropped)."""
    domains: list[str] = []
    for uri in report_uris(value):
        if uri.lower().startswith("mailto:") and "@" in uri:
            domain = uri.rsplit("@", 1)[1].split("!")[0].strip().lower().rstrip(".")
            if domain and domain not in domains:
                domains.append(domain)
    return domains


def report_uris(value: str | None) -> list[str]:
    """The comma-separated URIs of a ``rua``/``ruf`` tag, bounded."""
    if not value:
        return []
    return [u.strip() for u in value.split(",") if u.strip()][:MAX_URIS]


def is_internal(domain: str, destination: str) -> bool:
    """The destination is the domain, below it or above it (see the module docstring)."""
    return (
        destination == domain
        or destination.endswith("." + domain)
        or domain.endswith("." + destination)
    )


def record_facts(texts: tuple[str, ...]) -> dict[str, Any]:
    """The ``dmarc`` fact from the TXT strings at ``_dmarc.<domain>`` (authorisation left
    for :func:`check_domain`)."""
    found = [t.strip() for t in texts if _VERSION.match(t.strip())]
    facts: dict[str, Any] = {
        "present": False,
        "record": None,
        "policy": None,
        "subdomain_policy": None,
        "pct": None,
        "rua": [],
        "ruf": [],
        "external_rua_authorized": None,
        "errors": [],
    }
    if len(found) > 1:
        facts["errors"] = [f"{len(found)} DMARC records published (RFC 7489 §6.6.3: none applies)"]
        return facts
    if not found:
        return facts
    record = found[0][:2048]
    tags = parse_tags(record)
    errors: list[str] = []
    policy = _policy(tags.get("p"), "p", errors)
    facts.update(
        present=True,
        record=record,
        policy=policy,
        subdomain_policy=_policy(tags.get("sp"), "sp", errors) if "sp" in tags else policy,
        pct=_pct(tags.get("pct"), errors),
        rua=report_uris(tags.get("rua")),
        ruf=report_uris(tags.get("ruf")),
        errors=errors,
    )
    return facts


def _policy(value: str | None, tag: str, errors: list[str]) -> str | None:
    if value is None:
        errors.append(f"no {tag}= tag (RFC 7489 §6.3: required)")
        return None
    if value.lower() not in POLICIES:
        errors.append(f"{tag}={value[:32]!r} is not none, quarantine or reject")
        return None
    return value.lower()


def _pct(value: str | None, errors: list[str]) -> int | None:
    if value is None:
        return 100
    if not value.isdigit() or int(value) > 100:
        errors.append(f"pct={value[:16]!r} is not an integer from 0 to 100")
        return None
    return int(value)


async def check_domain(domain: str, query: Query) -> dict[str, Any]:
    """The ``dmarc`` fact of a domain (raises :class:`DmarcUnknown` when DNS did not answer)."""
    answer = await query(f"_dmarc.{domain}", "TXT")
    _known(answer, f"TXT _dmarc.{domain}")
    facts = record_facts(answer.records)
    if not facts["present"]:
        return facts
    external = [d for d in mailto_domains(",".join(facts["rua"])) if not is_internal(domain, d)]
    authorised = [await _authorised(domain, d, query) for d in external]
    facts["external_rua_authorized"] = all(authorised)
    facts["external_rua"] = [
        {"domain": d, "authorized": ok} for d, ok in zip(external, authorised, strict=True)
    ]
    return facts


async def _authorised(domain: str, destination: str, query: Query) -> bool:
    """RFC 7489 §7.1: ``<domain>._report._dmarc.<destination>`` TXT starting v=DMARC1."""
    name = f"{domain}._report._dmarc.{destination}"
    if not valid_domain(destination) or len(name) > 253:
        return False
    answer = await query(name, "TXT")
    _known(answer, f"TXT {name}")
    return any(_VERSION.match(text.strip()) for text in answer.records)


def _known(answer: Any, what: str) -> None:
    if answer.error is not None:
        raise DmarcUnknown(f"{what}: {answer.error}")
    if answer.rcode not in ("NOERROR", "NXDOMAIN"):
        raise DmarcUnknown(f"{what}: {answer.rcode} from the resolver")
