"""What the cloud families (AWS, OpenStack, Outscale) share: errors as data, and drafts.

A cloud API call that cannot answer (denied, throttled, absent, refused by the scope)
raises :class:`CallFailed` carrying the :class:`~audit.models.Problem` to record; a
:class:`Draft` turns it into the unknown facts of the resource it was observing, so an
observation cut short reads as unknown with its reason, never as absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from audit.models import Problem, Resource, Target


class CallFailed(Exception):
    """An API call could not answer; carries the problem to record as data."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class Draft:
    """A resource being observed; becomes a :class:`Resource` when the scan ends."""

    type: str
    key: str
    facts: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, Problem] = field(default_factory=dict)

    @contextmanager
    def observing(self, *names: str) -> Iterator[None]:
        """Record a failed call as the problem of ``names`` instead of raising it."""
        try:
            yield
        except CallFailed as failed:
            self.mark_unknown(failed.problem, *names)

    def mark_unknown(self, problem: Problem, *names: str) -> None:
        """These facts could not be observed: drop any partial value, keep the reason."""
        for name in names:
            self.facts.pop(name, None)
            self.unknown.setdefault(name, problem)

    def resource(self, target: Target) -> Resource:
        """Freeze the draft."""
        return Resource(
            type=self.type,
            key=self.key,
            target=target.uri,
            system=target.system,
            facts=dict(self.facts),
            unknown=dict(self.unknown),
        )
