"""What every collector shares: the declared calls, the scan context and resource drafts.

A collector declares the calls it makes (service, method, path, and the policy rule an
audit role needs for each): ``docs/openstack-permissions.md`` is generated from these
declarations, and a test proves that the lab saw no request that none declared. A fact
that could not be observed goes into ``unknown`` with its problem, never into ``facts``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audit.models import Problem, Reason
from checks.clouddata import CallFailed, Draft
from checks.openstack.session import Api

MAX_PAGES = 500
"""A listing that announces more pages than this is cut short and reported."""


@dataclass(frozen=True)
class Call:
    """One API call a collector makes, and the policy rule that allows it."""

    service: str
    method: str
    path: str
    policy: str

    @property
    def name(self) -> str:
        """``network:GET /v2.0/security-groups``: how problems and counts name it."""
        return f"{self.service}:{self.method} {self.path}"


class Harvest:
    """Everything collected for one project, written from several threads."""

    def __init__(self, project: Draft):
        self.project = project
        self._lock = threading.Lock()
        self._drafts: dict[str, Draft] = {}
        self.problems: list[Problem] = []

    def add(self, draft: Draft) -> Draft:
        with self._lock:
            return self._drafts.setdefault(draft.key, draft)

    def drafts(self, type_: str | None = None) -> list[Draft]:
        with self._lock:
            return [d for d in self._drafts.values() if type_ is None or d.type == type_]

    def problem(self, problem: Problem) -> None:
        with self._lock:
            self.problems.append(problem)


@dataclass
class Scan:
    """The context one collector runs in, for one region."""

    api: Api
    project_id: str
    project_name: str
    user_id: str
    region: str
    endpoint: str
    harvest: Harvest

    def key(self, kind: str, ident: str) -> str:
        """A stable resource key: ``openstack:<region>:<project id>:<kind>/<id>``."""
        return f"openstack:{self.region}:{self.project_id}:{kind}/{ident}"

    def get(self, call: Call, path: str | None = None, **params: Any) -> Any:
        """One declared call against this collector's endpoint (``path`` fills the template)."""
        url = self.endpoint.rstrip("/") + (path if path is not None else call.path)
        return self.api.request(call.name, call.policy, url, call.method, **params)[0]

    def head(self, call: Call, path: str) -> dict[str, str]:
        url = self.endpoint.rstrip("/") + path
        return dict(self.api.request(call.name, call.policy, url, "HEAD")[1])

    def pages(self, call: Call, items: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a listing, following ``<items>_links`` or Glance's ``next``."""
        url: str | None = self.endpoint.rstrip("/") + call.path
        found: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            assert url is not None
            answer = self.api.request(call.name, call.policy, url, call.method, **params)[0]
            params = {}
            if not isinstance(answer, dict) or not isinstance(answer.get(items), list):
                raise CallFailed(
                    Problem(Reason.UNREACHABLE, f"{call.name}: answer without a {items!r} list")
                )
            found += [i for i in answer[items] if isinstance(i, dict)]
            url = self._next(answer, items)
            if url is None:
                return found
        raise CallFailed(Problem(Reason.UNREACHABLE, f"{call.name}: more than {MAX_PAGES} pages"))

    def _next(self, answer: dict[str, Any], items: str) -> str | None:
        for link in answer.get(f"{items}_links") or []:
            if isinstance(link, dict) and link.get("rel") == "next" and link.get("href"):
                return str(link["href"])
        following = answer.get("next")
        if isinstance(following, str) and following.startswith("/"):
            # Glance's next is a path from the API root (/v2/images?marker=...), which is
            # the catalogue endpoint wherever the cloud mounts it.
            return self.endpoint.rstrip("/") + following
        return None


RunFn = Callable[[Scan], None]


@dataclass(frozen=True)
class Collector:
    """One service's collector: the catalogue type it reads and what it declares."""

    name: str
    service: str
    resource_types: tuple[str, ...]
    calls: tuple[Call, ...]
    run: RunFn
    regional: bool = True
