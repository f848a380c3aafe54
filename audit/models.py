"""The records that travel from a check to a report.

Inside the engine everything is a plain frozen dataclass: checks return
:class:`Observation` objects holding :class:`Resource` records (facts only, never a
verdict), the evaluator turns them into :class:`Finding` records, the store keeps
them and the renderers read them back. There is exactly one finding type from the
rule to the template.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar, overload

JSONValue = Any
"""A value that ``json.dumps`` accepts (facts and evidence must be JSON-safe)."""
_T = TypeVar("_T")


class Severity(StrEnum):
    """How bad a failing rule is; ordered from worst to least."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse, so ``a.rank >= b.rank`` reads as 'a at least as bad as b'."""
        return _SEVERITY_RANK[self]


SEVERITY_NAMES: tuple[str, ...] = tuple(severity.value for severity in Severity)
"""Severity names, worst first: the one order every option, table and report uses."""

_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Status(StrEnum):
    """Outcome of one rule on one resource."""

    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    ERROR = "error"  # could not be evaluated: the reason says why
    SKIP = "skip"  # not applicable (the rule's `where` did not match)


class Reason(StrEnum):
    """Why something could not be observed. Errors are data, never exceptions."""

    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    ACCESS_DENIED = "access_denied"
    THROTTLED = "throttled"
    NOT_FOUND = "not_found"
    NOT_IMPLEMENTED = "not_implemented"
    WORKER_LOST = "worker_lost"
    UNDECIDABLE = "undecidable"
    BUG = "bug"


class Lifecycle(StrEnum):
    """Where a finding stands in its history (derived, never typed by hand)."""

    NEW = "new"
    OPEN = "open"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    ACCEPTED = "accepted"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Target:
    """One thing to observe, validated and normalised from a URI.

    ``host`` is a name, an address or (for ``ports://``) a CIDR; ``params`` holds the
    URI's query string after the family validated it. ``system`` names the system of
    the inventory the target belongs to (``adhoc`` for command-line targets).
    """

    uri: str
    scheme: str
    host: str
    port: int | None = None
    params: tuple[tuple[str, str], ...] = ()
    system: str = "adhoc"
    from_command_line: bool = False
    addresses: tuple[str, ...] = ()
    """Addresses the scope guard resolved ``host`` to and found in scope. When set,
    a check connects only to these (never re-resolves), so DNS cannot move a target
    out of scope between the check and the connection."""

    def param(self, name: str, default: str | None = None) -> str | None:
        """Return a query parameter, or ``default`` when it was not given."""
        for key, value in self.params:
            if key == name:
                return value
        return default

    @property
    def key(self) -> str:
        """The canonical URI, used as the resource key of target-level errors."""
        return self.uri


@dataclass(frozen=True)
class Problem:
    """Something a check could not observe, and why.

    ``resource_type`` limits the problem to the rules about one resource type (None:
    every rule of the family); ``key`` names the resource it is about (None: the
    target itself); ``facts`` limits it to rules that read those top-level facts.
    """

    reason: Reason
    message: str
    resource_type: str | None = None
    key: str | None = None
    facts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resource:
    """Typed facts about one observed thing.

    ``unknown`` maps a top-level fact name to the problem that kept it unknown (an
    API call denied, say): a rule that reads such a fact ends as ``error`` with that
    reason instead of passing or failing on a guess.
    """

    type: str
    key: str
    target: str
    system: str
    facts: Mapping[str, JSONValue]
    unknown: Mapping[str, Problem] = field(default_factory=dict)

    def to_json(self) -> dict[str, JSONValue]:
        """The JSON report shape of DESIGN.md."""
        return {
            "type": self.type,
            "key": self.key,
            "target": self.target,
            "system": self.system,
            "facts": dict(self.facts),
            "unknown": {
                name: {"reason": p.reason.value, "message": p.message}
                for name, p in self.unknown.items()
            },
        }


@dataclass(frozen=True)
class Observation:
    """What a check returns for one target: resources, and what it could not see."""

    target: Target
    resources: tuple[Resource, ...] = ()
    problems: tuple[Problem, ...] = ()
    duration_s: float = 0.0


class _computed_once(Generic[_T]):
    """``functools.cached_property`` without its per-instance lock (Python 3.11 takes one
    on every first read, a third of the cost of a fingerprint on the store's hot path).

    A non-data descriptor: once computed, the value sits in the instance ``__dict__``
    and later reads never reach here. Findings are immutable, so a race computes the
    same value twice at worst.
    """

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, instance: None, owner: type) -> _computed_once[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> _T: ...
    def __get__(self, instance: object | None, owner: type) -> _T | _computed_once[_T]:
        if instance is None:
            return self
        value = self.compute(instance)
        instance.__dict__[self.name] = value
        return value


def fingerprint(rule_id: str, resource_key: str) -> str:
    """Stable identity of a finding across scans: the same problem keeps its id."""
    digest = hashlib.sha256(f"{rule_id}\x00{resource_key}".encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class Translation:
    """A rule's texts in a language other than its own (English).

    Kept per language (``{"fr": Translation(...)}``) on rules, findings and in the
    store, so a third language is data, not a new field or column.
    """

    title: str = ""
    remediation: str = ""
    message: str = ""


Translations = Mapping[str, Translation]
"""Language code (``fr``) → the rule's texts in that language."""


@dataclass(frozen=True)
class Finding:
    """One rule evaluated on one resource. The only finding type there is."""

    rule_id: str
    policy: str
    title: str
    resource_type: str
    resource_key: str
    target: str
    system: str
    status: Status
    severity: Severity
    message: str
    evidence: JSONValue = None
    controls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    remediation: str = ""
    reason: Reason | None = None
    lifecycle: Lifecycle | None = None
    first_seen: str | None = None
    scan_id: int | None = None
    translations: Translations = field(default_factory=dict)

    def title_in(self, lang: str) -> str:
        """The rule's title in the reader's language, when the policy gives it."""
        text = self.translations.get(lang)
        return text.title if text is not None and text.title else self.title

    def remediation_in(self, lang: str) -> str:
        """The remediation in the reader's language, when the policy gives it."""
        text = self.translations.get(lang)
        return text.remediation if text is not None and text.remediation else self.remediation

    @_computed_once
    def fingerprint(self) -> str:
        """See :func:`fingerprint` (computed once: it keys every store operation)."""
        return fingerprint(self.rule_id, self.resource_key)

    def evolve(self, **changes: Any) -> Finding:
        """A copy with some fields changed; ``dataclasses.replace`` without its cost on the
        store's hot path (no validation to redo: every field is already typed)."""
        copy = object.__new__(Finding)
        copy.__dict__.update(self.__dict__, **changes)
        return copy

    def to_json(self) -> dict[str, JSONValue]:
        """The JSON report shape of DESIGN.md."""
        return {
            "fingerprint": self.fingerprint,
            "rule_id": self.rule_id,
            "policy": self.policy,
            "title": self.title,
            "resource_type": self.resource_type,
            "resource_key": self.resource_key,
            "target": self.target,
            "system": self.system,
            "status": self.status.value,
            "severity": self.severity.value,
            "lifecycle": self.lifecycle.value if self.lifecycle else None,
            "message": self.message,
            "reason": self.reason.value if self.reason else None,
            "evidence": self.evidence,
            "controls": {k: list(v) for k, v in self.controls.items()},
            "remediation": self.remediation,
            "first_seen": self.first_seen,
            "translations": {
                lang: {"title": t.title, "remediation": t.remediation}
                for lang, t in sorted(self.translations.items())
            },
        }


@dataclass(frozen=True)
class ScanSummary:
    """The scan row: when, how it ended, what it counted."""

    id: int
    started_at: str
    finished_at: str | None
    status: str
    policies: tuple[str, ...]
    counts: Mapping[str, int]
    scope_declared: bool = True
    inventory: str | None = None
    command: str | None = None
    """The command line the scan was run with (secrets masked), when it was recorded."""

    def to_json(self) -> dict[str, JSONValue]:
        """The JSON report shape of DESIGN.md."""
        return {
            "id": self.id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "policies": list(self.policies),
            "counts": dict(self.counts),
            "scope_declared": self.scope_declared,
            "inventory": self.inventory,
            "command": self.command,
        }


@dataclass(frozen=True)
class ScanResult:
    """A finished (or interrupted) scan as the CLI sees it."""

    scan: ScanSummary
    findings: tuple[Finding, ...] = ()
    resources: tuple[Resource, ...] = ()


@dataclass(frozen=True)
class SystemInfo:
    """A system the committee homologates: a named service with an owner."""

    name: str
    owner: str = ""
    criticality: str = "medium"
    description: str = ""


@dataclass(frozen=True)
class Acceptance:
    """A risk accepted by a named owner until a date (it lapses by itself)."""

    id: int
    fingerprint: str
    rule_id: str
    resource_key: str
    owner: str
    reason: str
    until: str
    created_at: str
    decided_by: str = ""
    compensating: str = ""
    revoked_at: str | None = None

    def is_live(self, on: str) -> bool:
        """True when not revoked and ``on`` (an ISO date or timestamp) is not past expiry."""
        return self.revoked_at is None and on[:10] <= self.until
