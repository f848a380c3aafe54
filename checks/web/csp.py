"""Content-Security-Policy, parsed per CSP Level 3 (W3C, §2.2 "Policies").

The grammar is small enough to follow exactly, so no library is taken for it:
``serialized-policy-list = 1#serialized-policy`` (a header may carry several policies,
comma-separated, and so may several headers), ``serialized-policy = directive *(";"
directive)``, a directive is a name (ASCII case-insensitive) and source expressions
separated by ASCII whitespace. A directive repeated inside one policy is ignored after
its first occurrence (§2.2.1). Every policy of the list is enforced, so a source is
allowed only when every policy allows it: a fact that says "unsafe" holds when every
enforced policy is unsafe that way, a fact that says "restricted" when one policy
restricts.

Nonces and hashes are understood: with a ``'nonce-…'`` or hash source in a script list,
``'unsafe-inline'`` is ignored by CSP3 browsers (§8.2 "Usage of 'unsafe-inline'"),
so it is not counted as unsafe; ``'strict-dynamic'`` with a nonce or hash makes host and
scheme sources ignored too (§8.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Policy = dict[str, list[str]]
"""Directive name (lower case) → its source expressions, in order."""

MAX_POLICY = 16384
"""Characters of policy text read (a longer header is cut: it is parsed no further)."""
BROAD = frozenset({"*", "http:", "https:", "data:", "blob:", "filesystem:", "ftp:"})
"""Sources that allow any host of a scheme: as good as no restriction for scripts."""
SCRIPT_DIRECTIVES = ("script-src", "default-src")
NONCE_OR_HASH = ("'nonce-", "'sha256-", "'sha384-", "'sha512-")


def parse_policies(values: Sequence[str]) -> list[Policy]:
    """Every policy in the header values (each value may hold several, comma-separated)."""
    policies = []
    for value in values:
        for text in value[:MAX_POLICY].split(","):
            policy = parse_policy(text)
            if policy:
                policies.append(policy)
    return policies


def parse_policy(text: str) -> Policy:
    """One serialized policy; duplicate directives keep their first occurrence."""
    policy: Policy = {}
    for token in text.split(";"):
        parts = token.split()
        if not parts:
            continue
        name = parts[0].lower()
        if _is_directive_name(name) and name not in policy:
            policy[name] = parts[1:]
    return policy


def _is_directive_name(name: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c == "-") for c in name)


def script_sources(policy: Policy) -> list[str] | None:
    """The sources scripts are checked against (script-src, else default-src); None when
    neither is set, so scripts are not restricted at all."""
    for name in SCRIPT_DIRECTIVES:
        if name in policy:
            return [s.lower() if not s.startswith("'nonce-") else s for s in policy[name]]
    return None


def has_nonce_or_hash(sources: Sequence[str]) -> bool:
    """A nonce or hash source: CSP3 then ignores 'unsafe-inline'."""
    return any(s.lower().startswith(NONCE_OR_HASH) for s in sources)


def allows_inline(policy: Policy) -> bool:
    """Inline scripts run: no script restriction, or 'unsafe-inline' without nonce/hash."""
    sources = script_sources(policy)
    if sources is None:
        return True
    return "'unsafe-inline'" in sources and not has_nonce_or_hash(sources)


def allows_eval(policy: Policy) -> bool:
    """eval() runs: no script restriction, or 'unsafe-eval' in the script sources."""
    sources = script_sources(policy)
    return sources is None or "'unsafe-eval'" in sources


def broad_sources(policy: Policy) -> list[str]:
    """``directive source`` for each wildcard or scheme-only source where it matters:
    ``*`` anywhere, scheme-only sources in the script, object and default lists (unless
    'strict-dynamic' with a nonce or hash makes them ignored)."""
    found = []
    scripts = script_sources(policy) or []
    strict = "'strict-dynamic'" in scripts and has_nonce_or_hash(scripts)
    for name, sources in policy.items():
        risky = name in ("script-src", "object-src", "default-src") and not (
            strict and name in SCRIPT_DIRECTIVES
        )
        for source in sources:
            lowered = source.lower()
            if lowered == "*" or (risky and lowered in BROAD):
                found.append(f"{name} {lowered}")
    return found


def restricts_objects(policy: Policy) -> bool:
    """object-src 'none' (or default-src 'none' without object-src)."""
    sources = policy.get("object-src", policy.get("default-src"))
    return sources is not None and [s.lower() for s in sources] == ["'none'"]


def restricts_base(policy: Policy) -> bool:
    """base-uri set to 'none', 'self' or named hosts (no wildcard, no bare scheme)."""
    sources = policy.get("base-uri")
    return bool(sources) and not any(s.lower() in BROAD for s in sources or ())


META_IGNORED = ("frame-ancestors", "report-uri", "sandbox")
"""Directives a ``<meta http-equiv>`` policy may not carry (CSP3 §3.3): browsers drop them."""


def csp_facts(
    enforced: Sequence[str], report_only: Sequence[str], meta: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``csp`` fact from the Content-Security-Policy(-Report-Only) header values and
    the page's ``<meta http-equiv="Content-Security-Policy">`` policies, enforced alike."""
    policies = parse_policies(enforced)
    for policy in parse_policies(meta):
        kept = {k: v for k, v in policy.items() if k not in META_IGNORED}
        if kept:
            policies.append(kept)
    if not policies:
        return {
            "present": False,
            "report_only": bool(parse_policies(report_only)),
            "directives": {},
            "unsafe_inline": True,
            "unsafe_eval": True,
            "wildcard_sources": [],
            "frame_ancestors": None,
            "object_src_none": False,
            "base_uri_restricted": False,
        }
    ancestors = next((p["frame-ancestors"] for p in policies if "frame-ancestors" in p), None)
    return {
        "present": True,
        "report_only": bool(parse_policies(report_only)),
        "directives": policies[0],
        "unsafe_inline": all(allows_inline(p) for p in policies),
        "unsafe_eval": all(allows_eval(p) for p in policies),
        "wildcard_sources": sorted({s for p in policies for s in broad_sources(p)})
        if all(broad_sources(p) for p in policies)
        else [],
        "frame_ancestors": " ".join(ancestors) if ancestors is not None else None,
        "object_src_none": any(restricts_objects(p) for p in policies),
        "base_uri_restricted": any(restricts_base(p) for p in policies),
    }
