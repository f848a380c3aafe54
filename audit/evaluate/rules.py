"""Rules on resources: one finding per (rule, resource), with its evidence.

A rule's ``where`` decides whether it applies (``skip`` otherwise), its ``expect`` whether
the resource passes; a fact that could not be observed makes the rule ``error`` with the
reason, never a pass. The engine calls :func:`evaluate_observation` for each target as it
completes; tests and the differential layer call :func:`evaluate_rule` directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audit.evaluate.conditions import (
    AllOf,
    AnyOf,
    Condition,
    Each,
    Leaf,
    Not,
    Undecidable,
    evaluate,
    search,
)
from audit.evaluate.template import render
from audit.models import Finding, Observation, Problem, Reason, Resource, Status, Target

if TYPE_CHECKING:  # the policy module compiles conditions from this package
    from audit.plugins import CheckFamily
    from audit.policy import Rule


@dataclass(frozen=True)
class BoundRule:
    """A rule with the parameters it evaluates with (defaults + inventory overrides)."""

    rule: Rule
    params: Mapping[str, Any]


def describe(condition: Condition, params: Mapping[str, Any] | None = None) -> str:
    """A short human reading of a condition, for finding messages."""
    params = params or {}
    if isinstance(condition, Leaf):
        value = params.get(condition.param) if condition.param else condition.value
        return f"{condition.key} {condition.op}" + ("" if value is None else f" {value!r}")
    if isinstance(condition, AllOf):
        return " and ".join(f"({describe(c, params)})" for c in condition.conditions)
    if isinstance(condition, AnyOf):
        return " or ".join(f"({describe(c, params)})" for c in condition.conditions)
    if isinstance(condition, Not):
        return f"not ({describe(condition.condition, params)})"
    assert isinstance(condition, Each)
    return f"each {condition.key}: {describe(condition.expect, params)}"


def _finding(
    bound: BoundRule,
    resource: Resource,
    status: Status,
    message: str,
    evidence: Any = None,
    reason: Reason | None = None,
) -> Finding:
    rule = bound.rule
    return Finding(
        rule_id=rule.id,
        policy=rule.policy,
        title=rule.title,
        resource_type=rule.resource,
        resource_key=resource.key,
        target=resource.target,
        system=resource.system,
        status=status,
        severity=rule.severity,
        message=message,
        evidence=evidence,
        controls=rule.controls,
        remediation=rule.remediation,
        translations=rule.translations,
        reason=reason,
    )


def _unknown(names: frozenset[str], resource: Resource) -> Problem | None:
    """The first problem that kept one of ``names`` unknown on this resource."""
    for name in sorted(names):
        if name in resource.unknown:
            return resource.unknown[name]
    return None


def evaluate_rule(bound: BoundRule, resource: Resource) -> Finding:
    """One rule on one resource: pass, fail, skip (``where`` false) or error (unknown fact).

    ``where`` is decided first when the facts it reads are known, so a rule that does not
    apply is ``skip`` even if a fact only its expectation needs is unknown.
    """
    try:
        return _judge(bound, resource)
    except Undecidable as exc:
        message = f"could not be evaluated: {exc}"
        return _finding(bound, resource, Status.ERROR, message, reason=Reason.UNDECIDABLE)


def _judge(bound: BoundRule, resource: Resource) -> Finding:
    """:func:`evaluate_rule` without the guard: Undecidable escapes from here."""
    rule = bound.rule
    problem = _unknown(rule.where_reads, resource)
    applies = rule.where is None or evaluate(rule.where, resource.facts, bound.params).holds
    if problem is None and not applies:
        return _finding(bound, resource, Status.SKIP, "not applicable")
    problem = problem or _unknown(rule.reads, resource)
    if problem is not None:
        message = f"could not be evaluated: {problem.message}"
        declared = _declared(bound, resource, None)
        return declared or _finding(bound, resource, Status.ERROR, message, reason=problem.reason)
    outcome = evaluate(rule.expect, resource.facts, bound.params)
    if outcome.holds:
        return _observed(bound, resource, Status.PASS, "ok", outcome.evidence)
    return _declared(bound, resource, outcome.evidence) or _observed(
        bound,
        resource,
        Status.FAIL,
        failure_message(rule, resource.facts, bound.params),
        outcome.evidence,
    )


def failure_message(
    rule: Rule, facts: Any, params: Mapping[str, Any] | None = None, lang: str = "en"
) -> str:
    """The rule's sentence about this resource when it gives one (in the reader's language
    when the rule has it), else what was expected, as the condition reads."""
    translated = rule.translations.get(lang)
    template = (translated.message if translated is not None else "") or rule.message
    if template:
        return render(template, facts)
    return f"expected {describe(rule.expect, params)}"


def _observed(
    bound: BoundRule, resource: Resource, status: Status, message: str, evidence: Any
) -> Finding:
    """A verdict with the rule's ``context`` facts beside the evidence and in the message,
    so a reader sees what qualifies it (a security group that is not attached, say). A
    context fact that is absent or unknown is left out: it qualifies nothing."""
    found = {key: search(key, resource.facts) for key in bound.rule.context}
    context = {k: v for k, v in found.items() if v is not None and k not in resource.unknown}
    if not context:
        return _finding(bound, resource, status, message, evidence)
    said = ", ".join(f"{key}: {json.dumps(value, default=str)}" for key, value in context.items())
    merged = (
        {**context, **evidence} if isinstance(evidence, dict) else {**context, "value": evidence}
    )
    return _finding(bound, resource, status, f"{message} ({said})", merged)


def _declared(bound: BoundRule, resource: Resource, evidence: Any) -> Finding | None:
    """A pass the inventory declared through the rule's ``declared`` parameter, or None.

    The message names the declaration and quotes it; the evidence keeps what was observed
    next to the declared value, so nobody mistakes it for an observed pass.
    """
    declared = bound.rule.declared
    value = bound.params.get(declared.param) if declared else None
    if declared is None or value is None or value == "":
        return None
    said = {f"params.{declared.param}": value}
    merged = {**evidence, **said} if isinstance(evidence, dict) else said
    return _observed(bound, resource, Status.PASS, f"{declared.message}: {value}", merged)


def evaluate_observation(
    observation: Observation, family: CheckFamily, rules: Mapping[str, list[BoundRule]]
) -> list[Finding]:
    """Every finding for one observed target: evaluated rules, then problems as errors."""
    findings: dict[str, Finding] = {}
    for resource in observation.resources:
        for bound in rules.get(resource.type, ()):
            finding = evaluate_rule(bound, resource)
            findings.setdefault(finding.fingerprint, finding)
    for problem in observation.problems:
        for finding in problem_findings(observation.target, problem, family, rules):
            findings.setdefault(finding.fingerprint, finding)
    return list(findings.values())


def problem_findings(
    target: Target, problem: Problem, family: CheckFamily, rules: Mapping[str, list[BoundRule]]
) -> Iterable[Finding]:
    """``error`` findings for every rule a problem kept from being evaluated."""
    types = (problem.resource_type,) if problem.resource_type else family.resource_type_names()
    key = problem.key or target.key
    placeholder = Resource(type="", key=key, target=target.uri, system=target.system, facts={})
    for resource_type in types:
        for bound in rules.get(resource_type, ()):
            if problem.facts and not (bound.rule.reads & set(problem.facts)):
                continue
            yield _finding(
                bound,
                placeholder,
                Status.ERROR,
                f"could not be evaluated: {problem.message}",
                reason=problem.reason,
            )
