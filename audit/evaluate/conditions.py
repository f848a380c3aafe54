"""Evaluate declarative conditions over a resource's facts.

Conditions come from validated policy models (:mod:`audit.policy`) as plain frozen
dataclasses. Keys are JMESPath expressions (the ``jmespath`` package); a missing key
is JMESPath ``null`` — "absent" — never an exception, and ordering operators on null or
on mismatched types are simply false. No fact may make the evaluator raise: anything
unexpected becomes a false condition with the value it looked at as evidence. The one
exception is a condition that cannot be *decided* on a value (a ``matches`` on a text
longer than :data:`audit.regex.MAX_SUBJECT`, a pattern from an inventory parameter that
RE2 refuses): that raises :class:`Undecidable`, and the engine makes the rule ``error``
with the reason, since calling it false would be a verdict nobody reached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError, UnknownFunctionError
from jmespath.functions import Functions

from audit import regex

MISSING_PARAM = object()


class Undecidable(Exception):
    """A condition that cannot be decided on this value; the message says why."""


@dataclass(frozen=True)
class Leaf:
    """``{key, op, value}`` or ``{key, op, param}``."""

    key: str
    op: str
    value: Any = None
    param: str | None = None


@dataclass(frozen=True)
class AllOf:
    """Every sub-condition holds."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one sub-condition holds."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """The sub-condition does not hold."""

    condition: Condition


@dataclass(frozen=True)
class Each:
    """Every element of the list at ``key`` satisfies ``expect`` (relative keys)."""

    key: str
    expect: Condition


Condition = Leaf | AllOf | AnyOf | Not | Each


@dataclass(frozen=True)
class Outcome:
    """Whether a condition held, and the evidence: the values it looked at."""

    holds: bool
    evidence: Any


@lru_cache(maxsize=4096)
def compile_key(expression: str) -> Any:
    """Compile a JMESPath expression once (raises JMESPathError on bad syntax).

    Function names and argument counts are checked here too: JMESPath only checks them
    when it evaluates, and :func:`search` turns that failure into "absent", so a typo
    such as ``lenght(keys)`` would silently judge every resource instead of being
    refused with the policy.
    """
    compiled = jmespath.compile(expression)
    _check_functions(compiled.parsed)
    return compiled


def _check_functions(node: Any) -> None:
    if not isinstance(node, dict):
        return
    if node.get("type") == "function_expression":
        name, given = str(node.get("value")), len(node.get("children", []))
        spec = Functions.FUNCTION_TABLE.get(name)
        if spec is None:
            raise UnknownFunctionError(f"unknown function: {name}()")
        signature = spec["signature"]
        variadic = bool(signature) and bool(signature[-1].get("variadic"))
        if given < len(signature) or (given > len(signature) and not variadic):
            raise JMESPathError(f"{name}() takes {len(signature)} argument(s), got {given}")
    for child in node.get("children", []):
        _check_functions(child)


def search(expression: str, facts: Any) -> Any:
    """The value at ``expression`` in ``facts``; None when absent or not computable."""
    try:
        return reader(expression)(facts)
    except (JMESPathError, TypeError, ValueError, RecursionError):
        return None


@lru_cache(maxsize=4096)
def reader(expression: str) -> Callable[[Any], Any]:
    """What reads ``expression``: a plain function for the shapes most rules use (a dotted
    field path, and ``length()`` of one), JMESPath's interpreter for everything else.

    Why: a scan judges every rule on every resource, and JMESPath's tree-walking visitor
    cost more than the rest of the evaluation (28,000 searches for 1,000 mail domains).
    The plain readers do what JMESPath does, step by step (``get`` on each mapping, None
    as soon as a step finds nothing, ``length`` only of a string, array or object, by
    JMESPath's own type names); a differential test holds them to it.
    """
    compiled = compile_key(expression)
    fast = _plain(compiled.parsed)
    return fast if fast is not None else compiled.search


def _field_path(node: Any) -> tuple[str, ...] | None:
    kind = node.get("type")
    if kind == "field":
        return (str(node["value"]),)
    if kind == "subexpression":
        path: list[str] = []
        for child in node["children"]:
            part = _field_path(child)
            if part is None:
                return None
            path.extend(part)
        return tuple(path)
    return None


_LENGTH_TYPES = frozenset({"str", "unicode", "list", "_Projection", "dict", "OrderedDict"})
"""The type names JMESPath's ``length`` accepts (its TYPES_MAP for string, array, object)."""


def _plain(node: Any) -> Callable[[Any], Any] | None:
    path = _field_path(node)
    if path is not None:
        return lambda facts: _walk(facts, path)
    if node.get("type") == "function_expression" and node.get("value") == "length":
        children = node.get("children", [])
        inner = _field_path(children[0]) if len(children) == 1 else None
        if inner is not None:
            return lambda facts: _length(_walk(facts, inner))
    return None


def _walk(value: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        try:
            value = value.get(name)
        except AttributeError:
            return None
        if value is None:
            return None
    return value


def _length(value: Any) -> int | None:
    return len(value) if type(value).__name__ in _LENGTH_TYPES else None


def _as_set(value: Any) -> set[Any] | None:
    """A set view of a list/tuple/set of hashable items, or None when not possible."""
    if isinstance(value, list | tuple | set | frozenset):
        try:
            return set(value)
        except TypeError:
            return None
    return None


def _ordered(fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """Wrap an ordering comparison so null or mismatched types give False."""

    def compare(fact: Any, value: Any) -> bool:
        if fact is None or value is None or isinstance(fact, bool) != isinstance(value, bool):
            return False
        try:
            return bool(fn(fact, value))
        except TypeError:
            return False

    return compare


def _op_in(fact: Any, value: Any) -> bool:
    return isinstance(value, list | tuple) and _safe_contains(value, fact)


def _op_contains(fact: Any, value: Any) -> bool:
    if isinstance(fact, str):
        return isinstance(value, str) and value in fact
    if isinstance(fact, list | tuple):
        return _safe_contains(fact, value)
    if isinstance(fact, dict):
        return isinstance(value, str) and value in fact
    return False


def _safe_contains(container: Sequence[Any], item: Any) -> bool:
    return any(_equal(element, item) for element in container)


def _equal(left: Any, right: Any) -> bool:
    """Equality that keeps True apart from 1 (YAML and JSON both have booleans)."""
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    try:
        return bool(left == right)
    except Exception:
        return False


def _op_subset(fact: Any, value: Any) -> bool:
    fact_set, value_set = _as_set(fact), _as_set(value)
    return fact_set is not None and value_set is not None and fact_set <= value_set


def _op_disjoint(fact: Any, value: Any) -> bool:
    fact_set, value_set = _as_set(fact), _as_set(value)
    return fact_set is not None and value_set is not None and fact_set.isdisjoint(value_set)


def _op_matches(fact: Any, value: Any) -> bool:
    """RE2 search (linear time, see :mod:`audit.regex`); Undecidable when it cannot run."""
    if fact is None or not isinstance(value, str):
        return False
    try:
        return regex.search(value, str(fact))
    except regex.PatternError as exc:
        raise Undecidable(f"pattern {value!r} cannot be used: {exc}") from None
    except regex.SubjectTooLong as exc:
        raise Undecidable(str(exc)) from None


OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda fact, value: not _equal(fact, value),
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b),
    "ge": _ordered(lambda a, b: a >= b),
    "in": _op_in,
    "not_in": lambda fact, value: not _op_in(fact, value),
    "contains": _op_contains,
    "not_contains": lambda fact, value: not _op_contains(fact, value),
    "subset_of": _op_subset,
    "disjoint_from": _op_disjoint,
    "matches": _op_matches,
    "exists": lambda fact, _value: fact is not None,
    "absent": lambda fact, _value: fact is None,
}
"""Every operator of the policy language; the policy loader validates names against it."""

VALUELESS_OPS = frozenset({"exists", "absent"})


def evaluate(condition: Condition, facts: Any, params: Mapping[str, Any]) -> Outcome:
    """Evaluate ``condition`` on ``facts``; raises nothing but :class:`Undecidable`."""
    if isinstance(condition, Leaf):
        return _leaf(condition, facts, params)
    if isinstance(condition, AllOf):
        outcomes = [evaluate(c, facts, params) for c in condition.conditions]
        return Outcome(all(o.holds for o in outcomes), _merge(outcomes))
    if isinstance(condition, AnyOf):
        outcomes = [evaluate(c, facts, params) for c in condition.conditions]
        return Outcome(any(o.holds for o in outcomes), _merge(outcomes))
    if isinstance(condition, Not):
        inner = evaluate(condition.condition, facts, params)
        return Outcome(not inner.holds, inner.evidence)
    return _each(condition, facts, params)


def _leaf(leaf: Leaf, facts: Any, params: Mapping[str, Any]) -> Outcome:
    fact = search(leaf.key, facts)
    value = params.get(leaf.param, MISSING_PARAM) if leaf.param else leaf.value
    if value is MISSING_PARAM:
        return Outcome(False, {leaf.key: fact})
    return Outcome(OPERATORS[leaf.op](fact, value), {leaf.key: fact})


def _each(each: Each, facts: Any, params: Mapping[str, Any]) -> Outcome:
    items = search(each.key, facts)
    if items is None:
        items = []
    if not isinstance(items, list):
        return Outcome(False, {each.key: items})
    failing = [item for item in items if not evaluate(each.expect, item, params).holds]
    return Outcome(not failing, {each.key: failing if failing else items})


def _merge(outcomes: Sequence[Outcome]) -> Any:
    """Combine the evidence of sub-conditions into one mapping where possible."""
    merged: dict[str, Any] = {}
    for outcome in outcomes:
        if isinstance(outcome.evidence, dict):
            merged.update(outcome.evidence)
    return merged


def referenced_facts(condition: Condition | None) -> frozenset[str]:
    """Top-level fact names a condition reads (for the unknown-fact check)."""
    if condition is None:
        return frozenset()
    if isinstance(condition, Leaf):
        return _root_fields(condition.key)
    if isinstance(condition, AllOf | AnyOf):
        names: set[str] = set()
        for sub in condition.conditions:
            names |= referenced_facts(sub)
        return frozenset(names)
    if isinstance(condition, Not):
        return referenced_facts(condition.condition)
    return _root_fields(condition.key)


@lru_cache(maxsize=4096)
def read_paths(expression: str) -> frozenset[tuple[str, ...]]:
    """The fact paths an expression reads from its root: ``length(certificate.san)`` →
    ``{("certificate", "san")}``. A path stops where the expression starts reading
    elements (an index, a projection, a filter): what follows is relative to them."""
    try:
        tree = compile_key(expression).parsed
    except JMESPathError:
        return frozenset()
    return frozenset(_paths(tree))


def _chain(node: Any) -> tuple[str, ...] | None:
    """The names of a pure ``a.b.c`` chain, or None when the node is anything else."""
    kind = node.get("type") if isinstance(node, dict) else None
    if kind == "field":
        return (str(node.get("value")),)
    if kind == "subexpression":
        left, right = node["children"]
        head, tail = _chain(left), _chain(right)
        if head is not None and tail is not None:
            return head + tail
    return None


_ELEMENT_READERS = frozenset(
    {"index_expression", "projection", "filter_projection", "value_projection", "flatten", "pipe"}
)
"""Nodes whose first child reads from the root and the rest from what it selected."""


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths read by ``node`` evaluated at ``prefix`` (a path from the root)."""
    if not isinstance(node, dict):
        return []
    chain = _chain(node)
    if chain is not None:
        return [prefix + chain]
    children = node.get("children", [])
    kind = node.get("type")
    if kind == "subexpression":
        return _subexpression_paths(children[0], children[1], prefix)
    if kind in _ELEMENT_READERS:
        return _paths(children[0], prefix) if children else []
    if kind == "current":
        return [prefix] if prefix else []
    return [path for child in children for path in _paths(child, prefix)]


def _subexpression_paths(left: Any, right: Any, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``left.right``: the right side reads from what a plain left chain names; after a
    projection or an index it reads elements, which are not documented one by one."""
    head = _chain(left)
    if head is None:
        return _paths(left, prefix)
    return _paths(right, prefix + head) or [prefix + head]


@lru_cache(maxsize=4096)
def _root_fields(expression: str) -> frozenset[str]:
    """The fields an expression reads from its root object (walks the JMESPath AST)."""
    try:
        tree = compile_key(expression).parsed
    except JMESPathError:
        return frozenset()
    found: set[str] = set()
    _walk_root(tree, found)
    return frozenset(found)


def _walk_root(node: Any, found: set[str]) -> None:
    """Collect field names read at the root: the left-most field of each path."""
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    children = node.get("children", [])
    if kind == "field":
        found.add(str(node.get("value")))
    elif kind in {
        "subexpression",
        "index_expression",
        "projection",
        "filter_projection",
        "value_projection",
        "flatten",
        "pipe",
    }:
        if children:
            _walk_root(children[0], found)
    else:
        for child in children:
            _walk_root(child, found)
