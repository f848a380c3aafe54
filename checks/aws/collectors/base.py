"""What every collector shares: the scan context, resource drafts and the harvest.

A collector declares the service it talks to, the resource types it produces and the API
operations it calls (the IAM policy of :func:`checks.aws.FAMILY.permissions` is built from
these declarations, and a test checks that no undeclared call is ever made). It writes
facts into :class:`Draft` objects; a fact it could not observe goes into ``unknown`` with
the problem, never into ``facts`` as a guess.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from audit.models import Problem, Target
from checks.aws.session import Api
from checks.clouddata import Draft


class Harvest:
    """Everything collected for one account, written from many threads."""

    def __init__(self, account: Draft | None):
        self.account = account
        self._lock = threading.Lock()
        self._drafts: dict[str, Draft] = {}
        self.problems: list[Problem] = []
        self._regional: dict[str, dict[str, Any]] = {}

    def add(self, draft: Draft) -> Draft:
        """Keep a resource (the first one wins when two regions list the same ARN)."""
        with self._lock:
            return self._drafts.setdefault(draft.key, draft)

    def drafts(self, type_: str | None = None) -> list[Draft]:
        """The drafts collected so far, optionally of one type."""
        with self._lock:
            return [d for d in self._drafts.values() if type_ is None or d.type == type_]

    def problem(self, problem: Problem) -> None:
        """A problem that concerns a whole resource type or the target."""
        with self._lock:
            self.problems.append(problem)

    def account_facts(self, **facts: Any) -> None:
        """Set account-level facts (ignored when the account itself is unknown)."""
        if self.account is not None:
            with self._lock:
                self.account.facts.update(facts)

    def account_unknown(self, problem: Problem, *names: str) -> None:
        """Account facts that could not be observed."""
        if self.account is not None:
            with self._lock:
                self.account.mark_unknown(problem, *names)

    def regional(self, fact: str, region: str, value: Any) -> None:
        """One region's value of a per-region account fact (a Problem when unobserved)."""
        with self._lock:
            self._regional.setdefault(fact, {})[region] = value

    def regional_values(self) -> Mapping[str, dict[str, Any]]:
        """Per-region account facts, as collected."""
        with self._lock:
            return {k: dict(v) for k, v in self._regional.items()}


@dataclass
class Scan:
    """The context a collector runs in."""

    api: Api
    target: Target
    account_id: str | None
    partition: str
    regions: tuple[str, ...]
    harvest: Harvest
    fan_out: Callable[[Callable[[Any], None], list[Any]], None]

    def arn(self, service: str, region: str, resource: str) -> str:
        """An ARN in this account."""
        return f"arn:{self.partition}:{service}:{region}:{self.account_id or ''}:{resource}"

    def call(self, service: str, region: str, operation: str, **kw: Any) -> dict[str, Any] | None:
        """Shorthand for :meth:`Api.call`."""
        return self.api.call(service, region, operation, **kw)

    def pages(self, service: str, region: str, operation: str, **kw: Any) -> dict[str, Any] | None:
        """Shorthand for :meth:`Api.pages`."""
        return self.api.pages(service, region, operation, **kw)


RunFn = Callable[[Scan, str], None]
"""Collect one region (``region`` is the home region for a global service)."""


@dataclass(frozen=True)
class Collector:
    """One service's collector and what it declares."""

    name: str
    service: str
    resource_types: tuple[str, ...]
    operations: tuple[tuple[str, str], ...]
    run: RunFn
    regional: bool = True
    account_facts: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    def all_services(self) -> tuple[str, ...]:
        """Every botocore service the collector calls."""
        return (self.service, *self.services)
