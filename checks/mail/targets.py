"""Parse ``mail://DOMAIN[?dkim=SEL1,SEL2&smtp_port=N&mta_sts_port=N]`` targets, and the
inventory's ``mail:`` block.

The domain is a host name (never an address: mail domains are names). ``dkim`` lists the
DKIM selectors to look at (selectors cannot be discovered from DNS). ``smtp_port`` and
``mta_sts_port`` move the derived SMTP targets (default 25) and the MTA-STS policy host
(default 443) to other ports: for labs and test beds that cannot bind privileged ports,
never needed against real domains. The canonical URI sorts the parameters and the
selectors, so one domain written two ways is one target.

The inventory's block gives selectors per system or per domain, so a system's owner can
declare them once for every domain of the system; ``resolvers`` and ``dnssec_anchors``
there override the scan's dns settings for mail domains only (a split horizon, a lab)::

    mail:
      dkim:
        "Messagerie": [s2024, s2025]      # every mail:// target of that system
        example.gouv.fr: [relay]          # this domain, whatever its system
      resolvers: [192.0.2.53]             # optional: else --resolver / dns: {resolvers}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult

from audit.errors import TargetError
from audit.models import Target
from audit.uri import is_hostname, query_params, refuse_extras
from checks.mail.dkim import MAX_SELECTORS, valid_selector

PARAMS = frozenset({"dkim", "smtp_port", "mta_sts_port"})
DNS_OPTIONS = frozenset({"resolvers", "dnssec_anchors"})
OPTIONS = frozenset({"dkim"}) | DNS_OPTIONS
SMTP_PORT = 25
HTTPS_PORT = 443


def parse(split: SplitResult, raw: str) -> Target:
    """Validate a ``mail://`` URI into a Target whose host is the mail domain."""
    refuse_extras(split, raw)
    if split.port is not None or ":" in split.netloc:
        raise TargetError(f"{raw!r}: a mail:// target is a domain; it takes no port")
    domain = (split.hostname or "").lower().rstrip(".")
    if not domain or not is_hostname(domain) or "." not in domain:
        raise TargetError(f"{raw!r}: {domain or split.netloc!r} is not a mail domain name")
    params = dict(query_params(split, raw, PARAMS))
    try:
        canonical = _canonical(params)
    except ValueError as exc:
        raise TargetError(f"{raw!r}: {exc}") from None
    query = "&".join(f"{k}={v}" for k, v in canonical)
    uri = f"mail://{domain}" + (f"?{query}" if query else "")
    return Target(uri=uri, scheme="mail", host=domain, params=canonical)


def _canonical(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for key in sorted(params):
        value = params[key]
        if key == "dkim":
            value = ",".join(parse_selectors(value.split(",")))
        else:
            value = str(_port(key, value))
        out.append((key, value))
    return tuple(out)


def parse_selectors(values: Any) -> tuple[str, ...]:
    """Selectors lower-cased, de-duplicated and sorted; ValueError names a bad one."""
    if not isinstance(values, list | tuple):
        raise ValueError("dkim selectors must be a list")
    found: set[str] = set()
    for value in values:
        text = str(value).strip().lower() if isinstance(value, str) else ""
        if not valid_selector(text):
            raise ValueError(f"dkim selector {str(value)[:40]!r} is not a DNS label")
        found.add(text)
    if len(found) > MAX_SELECTORS:
        raise ValueError(f"at most {MAX_SELECTORS} dkim selectors per domain")
    return tuple(sorted(found))


def _port(key: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{key} must be a port number 1-65535")
    return int(value)


def validate_options(block: Any) -> None:
    """The inventory's ``mail:`` block: ``dkim`` maps a system or domain to selectors."""
    if not isinstance(block, Mapping):
        raise ValueError("expected a mapping such as {dkim: {SYSTEM: [selector, ...]}}")
    unknown = sorted(str(k) for k in block if k not in OPTIONS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(OPTIONS))})")
    _validate_dns(block)
    dkim = block.get("dkim", {})
    if not isinstance(dkim, Mapping):
        raise ValueError("dkim: expected a mapping of system or domain to selectors")
    for name, values in dkim.items():
        try:
            parse_selectors(values)
        except ValueError as exc:
            raise ValueError(f"dkim.{name}: {exc}") from None


def _validate_dns(block: Mapping[str, Any]) -> None:
    """``resolvers`` (addresses, ``HOST[:PORT]``) and ``dnssec_anchors`` (a file), which
    override the dns settings for this family only (a lab, a split horizon)."""
    from checks.dns.client import parse_server

    resolvers = block.get("resolvers", [])
    if not isinstance(resolvers, list) or not all(isinstance(r, str) for r in resolvers):
        raise ValueError("resolvers: expected a list of HOST[:PORT]")
    for resolver in resolvers:
        parse_server(resolver)
    anchors = block.get("dnssec_anchors")
    if anchors is not None and not isinstance(anchors, str):
        raise ValueError("dnssec_anchors: expected a file name")


def selectors(target: Target, options: Mapping[str, Any]) -> tuple[str, ...]:
    """The target's own selectors, plus those its system and its domain are given."""
    named = (target.param("dkim") or "").split(",")
    dkim = options.get("dkim", {}) if isinstance(options.get("dkim"), Mapping) else {}
    for key in (target.system, target.host):
        values = dkim.get(key)
        if isinstance(values, list | tuple):
            named.extend(str(v) for v in values)
    return parse_selectors([n for n in named if n])


def port(target: Target, name: str, default: int) -> int:
    """``smtp_port`` or ``mta_sts_port`` of the target, else the standard port."""
    value = target.param(name)
    return int(value) if value else default
