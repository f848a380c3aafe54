"""Compiled policies as the engine evaluates them, and how a policy file becomes one.

A policy file is untrusted input written by a person: :mod:`audit.policyfile` validates it
(a frozen pydantic model with ``extra="forbid"``, so a typo is an error, not a silently
ignored key, then the checks pydantic cannot express) and compiles it into the plain
frozen dataclasses defined here. A policy that does not validate is refused whole, with
file, line and YAML path. This module imports no pydantic: a scan whose built-in packs
come from the cache (:mod:`audit.policycache`) starts without it.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from audit.errors import PolicyError, PolicyErrors
from audit.evaluate import AllOf, AnyOf, Condition, Each, Leaf, Not
from audit.models import Severity, Translations
from audit.regex import PatternError, compile_pattern
from audit.yamlfile import load_yaml


@dataclass(frozen=True)
class Reference:
    """A rule's source, as reports and ``docs/checks.md`` cite it."""

    document: str
    version: str = ""
    section: str = ""
    url: str | None = None
    note: str = ""

    def cite(self) -> str:
        """``CIS … Benchmark 3.0.0, 1.16`` — one line for a table or a report."""
        head = " ".join(part for part in (self.document, self.version) if part)
        return f"{head}, {self.section}" if self.section else head


@dataclass(frozen=True)
class Declaration:
    """How an inventory may declare a rule met: a pack parameter and what the pass says."""

    param: str
    message: str


@dataclass(frozen=True)
class Rule:
    """A compiled rule, as the engine evaluates it."""

    id: str
    policy: str
    title: str
    resource: str
    expect: Condition
    severity: Severity
    remediation: str
    where: Condition | None = None
    controls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    reads: frozenset[str] = frozenset()
    where_reads: frozenset[str] = frozenset()
    translations: Translations = field(default_factory=dict)
    """The rule's title, remediation and message in other languages (``title_fr``…)."""
    references: tuple[Reference, ...] = ()
    context: tuple[str, ...] = ()
    declared: Declaration | None = None
    same_as: tuple[str, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class Policy:
    """A compiled policy pack."""

    name: str
    title: str
    version: str
    source: str
    rules: tuple[Rule, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    param_docs: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    warnings: tuple[str, ...] = ()

    def resource_types(self) -> frozenset[str]:
        """Resource types this pack has rules for."""
        return frozenset(rule.resource for rule in self.rules)


FactCatalogue = Mapping[str, Collection[str]]
"""Resource type → its documented fact names (``certificate.days_left``): what
``rempart checks list --facts`` shows, and all a rule may read."""

ANY_FACT: frozenset[str] = frozenset({"*"})
"""The facts of a type known by name only: any key is accepted."""


def policy_schema() -> dict[str, Any]:
    """JSON Schema of policy files, generated from the models editors validate against."""
    from audit.policyfile import policy_schema as schema

    return schema()


def load_policy(
    path: Path,
    known_types: Iterable[str] | FactCatalogue | None = None,
    *,
    cached: bool = False,
) -> Policy:
    """Load and validate one policy file; raise PolicyError naming file, line and path.

    ``known_types`` is a :data:`FactCatalogue` (types *and* the facts each documents:
    every key a rule reads is checked against it) or just the known type names. Every
    fault in the file is reported, not only the first: :class:`PolicyErrors` holds them.

    ``cached`` reads and keeps the compiled result in the user's policy cache
    (:mod:`audit.policycache`): for the built-in packs, which every scan loads unchanged.
    """
    catalogue = _catalogue(known_types)
    if cached:
        from audit.policycache import load_through_cache

        return load_through_cache(path, catalogue)
    return compile_file(path, catalogue)


def compile_file(path: Path, catalogue: FactCatalogue | None) -> Policy:
    """Read, validate and compile ``path`` (no cache): pydantic is imported here."""
    from audit.policyfile import compile_document

    return compile_document(load_yaml(path, PolicyError), catalogue)


def raise_all(problems: Sequence[PolicyError]) -> None:
    """Raise nothing, the one problem, or all of them as :class:`PolicyErrors`."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise PolicyErrors(problems)


def _catalogue(known: Iterable[str] | FactCatalogue | None) -> FactCatalogue | None:
    """Type names alone become a catalogue whose facts are not checked (``None``)."""
    if known is None:
        return None
    if isinstance(known, Mapping):
        return {name: frozenset(facts) for name, facts in known.items()}
    return dict.fromkeys(known, ANY_FACT)


def check_unique_ids(policies: Sequence[Policy]) -> None:
    """Rule ids are global: two packs may not define the same id. The twins a rule
    names (``same_as``) are checked here too, since only the set of packs knows them."""
    owner: dict[str, Policy] = {}
    for policy in policies:
        for rule in policy.rules:
            first = owner.setdefault(rule.id, policy)
            if first is not policy:
                raise PolicyError(
                    f"rule id {rule.id!r} is defined by both {first.name!r} and {policy.name!r}",
                    source=policy.source,
                )
    check_twins(policies)


def check_twins(policies: Sequence[Policy]) -> None:
    """Every ``same_as`` id names a rule of the loaded packs or a built-in rule, and a
    twin that is loaded selects the same resource type (else no finding could pair).

    Every fault is reported. Built-in ids are read only when some twin is not loaded.
    """
    loaded = {rule.id: rule for policy in policies for rule in policy.rules}
    problems: list[PolicyError] = []
    for policy in policies:
        for rule in policy.rules:
            problems.extend(_twin_faults(rule, policy.source, loaded))
    raise_all(problems)


def _twin_faults(rule: Rule, source: str, loaded: Mapping[str, Rule]) -> list[PolicyError]:
    faults = []
    for twin_id in rule.same_as:
        twin = loaded.get(twin_id)
        if twin is None and twin_id not in builtin_rule_types():
            message = f"{rule.id}: same_as names an unknown rule {twin_id!r}"
        elif (twin.resource if twin else builtin_rule_types()[twin_id]) != rule.resource:
            message = (
                f"{rule.id}: same_as {twin_id!r} selects another resource type "
                f"({rule.resource} here); twins evidence one requirement on one resource"
            )
        else:
            continue
        faults.append(PolicyError(message, source=source))
    return faults


def twins_of(rules: Iterable[Rule]) -> dict[str, frozenset[str]]:
    """Rule id → its twins, symmetric: ``same_as`` declared on either side is enough.

    Not transitive: AWS-EC2-101 (SSH/RDP open to the Internet) is the twin of both
    AWS-EC2-003 (from IPv4) and AWS-EC2-004 (from IPv6), which are not each other's.
    """
    found: dict[str, set[str]] = {}
    for rule in rules:
        for twin in rule.same_as:
            found.setdefault(rule.id, set()).add(twin)
            found.setdefault(twin, set()).add(rule.id)
    return {rule_id: frozenset(twins) for rule_id, twins in found.items()}


@functools.cache
def builtin_twins() -> Mapping[str, frozenset[str]]:
    """:func:`twins_of` over every built-in pack: what acceptances and reports use."""
    return twins_of(rule for policy in _builtin_packs() for rule in policy.rules)


@functools.cache
def builtin_rule_types() -> Mapping[str, str]:
    """Built-in rule id → the resource type it selects."""
    return {rule.id: rule.resource for policy in _builtin_packs() for rule in policy.rules}


def _builtin_packs() -> list[Policy]:
    from audit.registry import builtin_policies

    return [load_policy(path, cached=True) for path in builtin_policies().values()]


def with_params(policy: Policy, overrides: Mapping[str, Any], source: str | None) -> Policy:
    """The policy with inventory parameter overrides applied (unknown names refused)."""
    unknown = sorted(set(overrides) - set(policy.params))
    if unknown:
        from audit.errors import InventoryError

        raise InventoryError(
            f"params.{policy.name}: unknown parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(policy.params)) or 'none'})",
            source=source,
        )
    _check_pattern_overrides(policy, overrides, source)
    return replace(policy, params={**policy.params, **overrides})


def _check_pattern_overrides(
    policy: Policy, overrides: Mapping[str, Any], source: str | None
) -> None:
    """An inventory value for a parameter that ``matches`` reads must be an RE2 pattern."""
    from audit.errors import InventoryError

    for name in sorted(pattern_params(policy) & set(overrides)):
        value = overrides[name]
        try:
            if not isinstance(value, str):
                raise PatternError("a regular expression must be a string")
            compile_pattern(value)
        except PatternError as exc:
            raise InventoryError(
                f"params.{policy.name}.{name}: bad regular expression: {exc}", source=source
            ) from None


def pattern_params(policy: Policy) -> frozenset[str]:
    """Parameters some ``matches`` condition of the policy reads."""
    found: set[str] = set()
    for rule in policy.rules:
        for condition in (rule.where, rule.expect):
            _collect_pattern_params(condition, found)
    return frozenset(found)


def _collect_pattern_params(condition: Condition | None, found: set[str]) -> None:
    if isinstance(condition, Leaf):
        if condition.op == "matches" and condition.param:
            found.add(condition.param)
    elif isinstance(condition, AllOf | AnyOf):
        for sub in condition.conditions:
            _collect_pattern_params(sub, found)
    elif isinstance(condition, Not):
        _collect_pattern_params(condition.condition, found)
    elif isinstance(condition, Each):
        _collect_pattern_params(condition.expect, found)


def builtin_rule_controls() -> list[tuple[str, dict[str, tuple[str, ...]]]]:
    """(rule id, controls) of every rule of every built-in pack: what the framework
    catalogues' coverage (``rempart frameworks``, ``docs/frameworks.md``) is built from."""
    from audit.registry import builtin_policies

    return [
        (rule.id, dict(rule.controls))
        for path in builtin_policies().values()
        for rule in load_policy(path).rules
    ]


_BOUND_FAMILY = {
    "eq": "eq",
    "in": "in",
    "subset_of": "subset",
    "le": "at most",
    "lt": "at most",
    "ge": "at least",
    "gt": "at least",
}
"""Operators whose value is a requirement another pack may set differently."""


def contradictions(policies: Sequence[Policy]) -> list[str]:
    """Where two packs applied together require different things of the same fact.

    Conservative: only conditions every resource must meet (a rule's ``expect`` or its
    ``all`` branches) with a value, compared per resource type, applicability (``where``),
    key and kind of bound. Applying Mozilla's modern and intermediate profiles together,
    say, advises TLS 1.3 only *and* TLS 1.2, certificates of 90 *and* 366 days: the
    author of a selection of packs should know, and choose (``policy validate`` says it).
    """
    first: dict[tuple[str, str, str], tuple[str, str, str, Any]] = {}
    said: dict[tuple[str, str, str, str], str] = {}
    for policy in policies:
        for rule in policy.rules:
            for leaf in _requirements(rule.expect):
                value = policy.params.get(leaf.param) if leaf.param else leaf.value
                bound = _BOUND_FAMILY.get(leaf.op)
                if bound is None or value is None:
                    continue
                where = (rule.resource, f"{leaf.key} {rule.where!r}", bound)
                mine = (policy.name, rule.id, leaf.op, _comparable(value))
                theirs = first.setdefault(where, mine)
                if theirs[0] != policy.name and theirs[2:] != mine[2:]:
                    pair = (*where, f"{theirs[0]}|{policy.name}")
                    said.setdefault(
                        pair,
                        f"{theirs[0]} {theirs[1]} and {policy.name} {rule.id} both judge "
                        f"{rule.resource} {leaf.key} but differ ({theirs[2]} {theirs[3]!r} "
                        f"against {leaf.op} {mine[3]!r}); choose the pack whose advice the "
                        "committee should read",
                    )
    return list(said.values())


def _requirements(condition: Condition) -> list[Leaf]:
    """The leaves every resource must satisfy: the condition itself or its ``all``."""
    if isinstance(condition, Leaf):
        return [condition]
    if isinstance(condition, AllOf):
        return [leaf for sub in condition.conditions for leaf in _requirements(sub)]
    return []


def _comparable(value: Any) -> Any:
    """Lists compare as sorted tuples: the same set in another order is the same value."""
    if isinstance(value, list | tuple):
        try:
            return tuple(sorted(value))
        except TypeError:
            return tuple(value)
    return value
