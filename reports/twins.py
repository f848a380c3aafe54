"""One risk, one line: the failures of twin rules on one resource, shown once.

Two packs often check the same requirement (``same_as`` in the packs, see
``docs/policy-language.md``): CIS 1.5 and the public-sector baseline both fail when the
root user has no MFA. The store keeps both findings, and so do the JSON, CSV and SARIF
exports; the committee reads risks, so its top risks, action plan and open counts show the
pair once, under both rule ids. The twins are those the built-in packs declare.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from audit import governance as gov
from audit.models import Finding


@dataclass(frozen=True)
class Grouped:
    """The failures with each group of twins reduced to one finding, and, per kept rule,
    every rule id it stands for (itself first)."""

    findings: tuple[Finding, ...]
    rule_ids: Mapping[str, tuple[str, ...]]

    def ids_of(self, rule_id: str) -> tuple[str, ...]:
        """Every rule id a kept rule stands for (itself alone when it has no twin)."""
        return self.rule_ids.get(rule_id, (rule_id,))


def declared_twins() -> Mapping[str, frozenset[str]]:
    """The twins of the built-in packs; none when they cannot be read (the report stays
    whole, with one line per rule)."""
    from audit.policy import builtin_twins

    try:
        return builtin_twins()
    except Exception:  # a broken pack costs the grouping, never the report
        return {}


def group(findings: Sequence[Finding], twins: Mapping[str, frozenset[str]]) -> Grouped:
    """Keep one failure per group of twins failing on the same resource.

    The kept one is the most severe, then the smallest id, so a group keeps the same rule
    on every resource and its action is not split. Findings that do not fail are kept.
    """
    failing: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        if gov.outcome(finding) == gov.FAIL and finding.rule_id in twins:
            failing[finding.resource_key].append(finding)
    dropped: set[int] = set()
    stands_for: dict[str, set[str]] = defaultdict(set)
    for items in failing.values():
        for component in _components(items, twins):
            kept, *others = sorted(component, key=lambda f: (-f.severity.rank, f.rule_id))
            stands_for[kept.rule_id].update(f.rule_id for f in others)
            dropped.update(id(f) for f in others)
    kept_findings = tuple(f for f in findings if id(f) not in dropped)
    ids = {rule: (rule, *sorted(others)) for rule, others in stands_for.items() if others}
    return Grouped(kept_findings, ids)


def _components(
    items: Iterable[Finding], twins: Mapping[str, frozenset[str]]
) -> list[list[Finding]]:
    """The failures of one resource, joined where a rule names another as its twin."""
    by_rule = {f.rule_id: f for f in items}
    seen: set[str] = set()
    groups = []
    for start in sorted(by_rule):
        if start in seen:
            continue
        stack, component = [start], []
        seen.add(start)
        while stack:
            rule = stack.pop()
            component.append(by_rule[rule])
            for twin in sorted(twins.get(rule, frozenset()) & (by_rule.keys() - seen)):
                seen.add(twin)
                stack.append(twin)
        groups.append(component)
    return groups
