"""One authenticated connection per scan, and the only way a collector makes a request.

openstacksdk reads ``clouds.yaml`` and builds the keystoneauth session (password or
application credential); every request then goes through :meth:`Api.get`, which names
the call, counts it, retries a 429 a bounded number of times and turns any other answer
into data. A transport adapter mounted on the session refuses any request to a host the
scope guard has not admitted (the auth URL when the scan was planned, each catalogue
endpoint after the token): redirects and links in an answer cannot move a request, and
its token, elsewhere.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from audit.errors import ScopeError
from audit.models import Problem, Reason, Target
from audit.plugins import CheckContext
from checks.clouddata import CallFailed
from checks.openstack.config import CloudSpec
from checks.openstack.errors import OutOfScope, status_problem, transport_problem

MAX_ANSWER_BYTES = 32 * 1024 * 1024
"""An answer larger than this is cut short, so its facts are unknown (never guessed)."""
SERVICE_TYPES: Mapping[str, tuple[str, ...]] = {
    "identity": ("identity",),
    "compute": ("compute",),
    "network": ("network",),
    "block-storage": ("block-storage", "volumev3", "volume"),
    "image": ("image",),
    "object-store": ("object-store",),
    "load-balancer": ("load-balancer",),
}
"""Catalogue types by official name, with the aliases clouds still publish."""


@dataclass(frozen=True)
class Settings:
    """The family's inventory block: ``openstack: {max_attempts: 3}``."""

    max_attempts: int = 3


def parse_options(block: Any) -> Settings:
    """Check the inventory's ``openstack:`` block (ValueError with one line)."""
    if block is None:
        return Settings()
    if not isinstance(block, Mapping) or set(block) - {"max_attempts"}:
        raise ValueError("expected {max_attempts: 1-10}")
    attempts = block.get("max_attempts", 3)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 10:
        raise ValueError("max_attempts: expected an integer from 1 to 10")
    return Settings(max_attempts=attempts)


class Api:
    """The authenticated session, the admitted hosts, and a count of every call made."""

    def __init__(self, spec: CloudSpec, target: Target, ctx: CheckContext, settings: Settings):
        self.spec = spec
        self.target = target
        self.ctx = ctx
        self.settings = settings
        self.calls: Counter[str] = Counter()
        self._admitted: set[str] = {_netloc(spec.auth_url)}
        self._lock = threading.Lock()
        self._conn: Any = None
        self._access: Any = None

    # --- the session ---------------------------------------------------------------

    def authenticate(self) -> Any:
        """The token (keystoneauth's AccessInfo): the only call before the project is known."""
        from openstack import connection

        self._conn = connection.Connection(config=self.spec.region_object)
        session = self._conn.session
        guard = _guard_adapter(self)
        session.session.mount("http://", guard)
        session.session.mount("https://", guard)
        try:
            self._access = session.auth.get_access(session)
        except Exception as exc:
            raise CallFailed(transport_problem(exc, "identity:POST /v3/auth/tokens")) from None
        with self._lock:
            self.calls["identity:POST /v3/auth/tokens"] += 1
        return self._access

    def check_host(self, url: str) -> None:
        """Raise OutOfScope unless the URL's host and port were admitted."""
        if _netloc(url) not in self._admitted:
            raise OutOfScope(f"{urlsplit(url).netloc} was not admitted by the scope guard")

    def admit_endpoint(self, url: str, service: str) -> None:
        """A catalogue endpoint passes the scope guard before its first request."""
        from audit.scope import ScopeGuard

        split = urlsplit(url)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise CallFailed(
                Problem(Reason.REFUSED, f"{service}: catalogue endpoint {url!r} is not a URL")
            )
        try:
            pinned = ScopeGuard(self.ctx.scope).admit_derived(
                split.hostname, self.target, f"{service} endpoint"
            )
        except ScopeError as exc:
            raise CallFailed(Problem(Reason.REFUSED, exc.detail)) from None
        if split.scheme == "http" and not _all_loopback(pinned.addresses):
            raise CallFailed(
                Problem(
                    Reason.REFUSED,
                    f"{service}: endpoint {split.netloc} is plain http outside loopback; "
                    "the token would travel in clear text",
                )
            )
        with self._lock:
            self._admitted.add(_netloc(url))

    # --- requests ------------------------------------------------------------------

    def request(
        self, call: str, policy: str, url: str, method: str = "GET", **params: Any
    ) -> tuple[Any, Mapping[str, str]]:
        """One declared call: the decoded JSON answer (None for HEAD) and the headers."""
        try:
            response = self._conn.session.request(
                url,
                method,
                params=params or None,
                headers={"Accept": "application/json"},
                raise_exc=False,
                redirect=False,
                connect_retries=0,
                status_code_retries=self.settings.max_attempts - 1,
                retriable_status_codes=[429],
                timeout=self.ctx.timeout,
            )
        except Exception as exc:
            raise CallFailed(transport_problem(exc, call)) from None
        finally:
            with self._lock:
                self.calls[call] += 1
        if not 200 <= response.status_code < 300:
            raise CallFailed(status_problem(response.status_code, call, policy))
        return _decode(response, call, method), response.headers

    def catalogue(self) -> dict[str, list[dict[str, Any]]]:
        """Public endpoints by catalogue type, as the token lists them."""
        endpoints = self._access.service_catalog.get_endpoints(interface="public")
        return {str(k): list(v) for k, v in endpoints.items()}


def _decode(response: Any, call: str, method: str) -> Any:
    if method == "HEAD":
        return None
    body = response.content
    if len(body) > MAX_ANSWER_BYTES:
        raise CallFailed(Problem(Reason.UNREACHABLE, f"{call}: answer too large, cut short"))
    if response.status_code == 204 or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise CallFailed(
            Problem(Reason.UNREACHABLE, f"{call}: unreadable answer (truncated or malformed)")
        ) from None


def _netloc(url: str) -> str:
    split = urlsplit(url)
    default = 443 if split.scheme == "https" else 80
    return f"{split.scheme}://{(split.hostname or '').lower()}:{split.port or default}"


def _all_loopback(addresses: tuple[str, ...]) -> bool:
    import ipaddress

    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def _guard_adapter(api: Api) -> Any:
    """A requests adapter that refuses hosts the scope guard has not admitted."""
    from requests.adapters import HTTPAdapter

    class GuardAdapter(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            api.check_host(str(request.url))
            return super().send(request, *args, **kwargs)

    return GuardAdapter()
