"""What the report says about a rule beyond its findings: its pack's version and sources.

A finding carries its rule id and its pack's name; the scan records each pack as
``name@version``. The references (the document, version and section a rule comes from)
live in the pack itself, so the built-in packs the scan names are read again here. A
pack given by path, or one that no longer loads, simply has no references: the report
still names the rule and the version the scan recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from audit.models import Finding
from audit.policy import Reference, Rule


@dataclass(frozen=True)
class RuleSource:
    """A rule's pack, the pack's version as the scan applied it, and its references."""

    policy: str
    version: str
    references: tuple[Reference, ...] = ()


def versions(policies: Iterable[str]) -> dict[str, str]:
    """``{name: version}`` from the scan's ``name@version`` strings (a path keeps its name)."""
    found = {}
    for entry in policies:
        name, _, version = entry.rpartition("@") if "@" in entry else (entry, "", "")
        found[name] = version
    return found


@functools.cache
def _references_of(pack: str) -> Mapping[str, tuple[Reference, ...]]:
    """Rule id → references of one built-in pack; empty when it is not built in or fails."""
    from audit.policy import load_policy
    from audit.registry import builtin_policies

    path = builtin_policies().get(pack)
    if path is None:
        return {}
    try:
        policy = load_policy(path)
    except Exception:  # a pack that no longer loads leaves the report whole
        return {}
    return {rule.id: rule.references for rule in policy.rules}


def sources(rules: Iterable[tuple[str, str]], policies: Iterable[str]) -> dict[str, RuleSource]:
    """``rule id → RuleSource`` for the ``(rule id, pack)`` pairs a report shows."""
    known = versions(policies)
    return {
        rule_id: RuleSource(pack, known.get(pack, ""), _references_of(pack).get(rule_id, ()))
        for rule_id, pack in rules
    }


@functools.cache
def _rules_of(pack: str) -> Mapping[str, Rule]:
    """Rule id → compiled rule of one built-in pack; empty when not built in or failing."""
    from audit.policy import load_policy
    from audit.registry import builtin_policies

    path = builtin_policies().get(pack)
    if path is None:
        return {}
    try:
        return {rule.id: rule for rule in load_policy(path).rules}
    except Exception:  # a pack that no longer loads leaves the report whole
        return {}


def sentence(finding: Finding, facts: Mapping[str, Any] | None, lang: str) -> str:
    """The failure as its rule's message says it in the reader's language, rendered at
    report time from the resource's facts; empty when the rule has no message (its
    condition's syntax is for the annex, not for the committee's page)."""
    from audit.evaluate.rules import failure_message

    rule = _rules_of(finding.policy).get(finding.rule_id)
    if rule is None or not rule.message or facts is None:
        return ""
    return failure_message(rule, facts, lang=lang)
