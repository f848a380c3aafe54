"""Sessions, clients and calls: the only place that talks to botocore.

The session comes from the standard credential chain (profile, environment, SSO, instance
role), optionally followed by an assume-role with an external id. Clients are built once
per (service, region) and shared across threads (botocore clients are thread-safe, sessions
are not, hence the lock). Every client retries in botocore's *adaptive* mode and honours the
check's timeout. Every call goes through :meth:`Api.call` or :meth:`Api.pages` (paginators
wherever the API has one), which count calls and turn failures into
:class:`~checks.aws.errors.CallFailed` carrying a :class:`Problem`.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from audit.models import Problem, Reason, Target
from checks.aws.errors import error_code, problem_from
from checks.aws.services import CALLED_SERVICES
from checks.aws.targets import (
    parse_regions,
    validate_endpoint,
    validate_external_id,
    validate_profile,
    validate_role,
    validate_service,
)
from checks.clouddata import CallFailed

DEFAULT_REGION = "us-east-1"
SESSION_NAME = "rempart-audit"
_IAM_PREFIX = {"efs": "elasticfilesystem", "s3control": "s3", "accessanalyzer": "access-analyzer"}
_IAM_ACTION = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
}
_ACCOUNT_HOST_PREFIX = re.compile(r"^\d{12}\.")
_REGION_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _default_region(session: Any) -> str:
    """The profile's or environment's region; one that is not a label stops the scan."""
    name = str(session.get_config_variable("region") or DEFAULT_REGION)
    if not is_region_label(name):
        message = f"the configured default region {name!r} is not a region name"
        raise CallFailed(Problem(Reason.REFUSED, message))
    return name


def is_region_label(name: str) -> bool:
    """True when a region name from outside Rempart is one DNS label.

    Region names are written into ``{region}`` endpoint templates, so one with a dot, a
    ``#`` or an ``@`` (from a provider's DescribeRegions, say) would move the call to a
    host the scope guard never admitted.
    """
    return bool(_REGION_LABEL.match(name))


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorises one API operation (``s3:GetBucketPolicy``)."""
    known = _IAM_ACTION.get((service, operation))
    return known or f"{_IAM_PREFIX.get(service, service)}:{operation}"


@dataclass(frozen=True)
class Settings:
    """How to reach one account: merged from the target URI and the inventory ``aws:`` block.

    ``endpoints`` maps a botocore service name to a URL (``{region}`` allowed). When it is
    given without a general ``endpoint``, the provider offers only the services it lists.
    """

    profile: str | None = None
    regions: tuple[str, ...] = ()
    endpoint: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)
    role_arn: str | None = None
    external_id: str | None = None
    max_attempts: int = 4
    max_workers: int = 8

    def offers(self, service: str) -> bool:
        """False when per-service endpoints are configured and this one is absent."""
        return bool(self.endpoint) or not self.endpoints or service in self.endpoints

    def endpoint_for(self, service: str, region: str) -> str | None:
        """The URL to call ``service`` in ``region`` (None: AWS's own endpoint)."""
        url = self.endpoints.get(service, self.endpoint)
        return url.replace("{region}", region) if url else None

    def describe_endpoint(self, service: str) -> str:
        """Where a service is served, for messages."""
        return self.endpoints.get(service) or self.endpoint or "AWS"


OPTIONS = (
    "profile",
    "regions",
    "endpoint",
    "endpoints",
    "role",
    "external_id",
    "max_attempts",
    "max_workers",
)
"""The settings the inventory's ``aws:`` block accepts."""
LIMITS = {"max_attempts": (4, 1, 20), "max_workers": (8, 1, 64)}
"""Integer settings: default, smallest, largest."""


def settings_for(target: Target, options: Mapping[str, Any]) -> Settings:
    """Merge the inventory ``aws:`` block with the target (the target wins).

    The target's parameters were validated when it was parsed; the block is validated
    by :func:`parse_options`, the same function the inventory runs when it loads.
    """
    base = parse_options(options)
    regions = target.param("regions")
    return replace(
        base,
        profile=(target.host if target.host != "default" else None) or base.profile,
        regions=parse_regions(regions) if regions else base.regions,
        endpoint=target.param("endpoint") or base.endpoint,
        role_arn=target.param("role") or base.role_arn,
        external_id=target.param("external_id") or base.external_id,
    )


def parse_options(block: Any) -> Settings:
    """The inventory's ``aws:`` block alone, validated; raise ValueError naming the setting.

    This is the family's ``validate_options`` (run when an inventory loads, exit 2 on a
    mistake) and the first step of :func:`settings_for` (run at scan time): one parser.
    """
    if block is None:
        return Settings()
    if not isinstance(block, Mapping):
        raise ValueError(f"must be a mapping of settings ({', '.join(OPTIONS)})")
    unknown = sorted(str(k) for k in block if k not in OPTIONS)
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r} (known: {', '.join(OPTIONS)})")
    return Settings(
        profile=_text(block, "profile", validate_profile),
        regions=_regions(block.get("regions")),
        endpoint=_text(block, "endpoint", validate_endpoint),
        endpoints=_endpoints(block.get("endpoints")),
        role_arn=_text(block, "role", validate_role),
        external_id=_text(block, "external_id", validate_external_id),
        max_attempts=_bounded(block, "max_attempts"),
        max_workers=_bounded(block, "max_workers"),
    )


def _text(block: Mapping[str, Any], name: str, check: Callable[[str], str]) -> str | None:
    """One string setting through its validator (None when absent)."""
    value = block.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be a string, not {type(value).__name__}")
    try:
        return check(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _regions(value: Any) -> tuple[str, ...]:
    """A list of region names, or one comma-separated string (as in a target URI)."""
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise ValueError("regions: must be a list of region names (like [eu-west-3])")
    try:
        return parse_regions(value)
    except ValueError as exc:
        raise ValueError(f"regions: {exc}") from None


def _endpoints(value: Any) -> dict[str, str]:
    """The per-service endpoint map; a service the family never calls is a typo."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("endpoints: must map a service name to a URL (like {s3: https://...})")
    known = CALLED_SERVICES
    endpoints = {}
    for service, url in value.items():
        where = f"endpoints.{service}"
        try:
            name = validate_service(str(service))
            if name not in known:
                raise ValueError(
                    f"{name!r} is not a service this check calls "
                    f"(known: {', '.join(sorted(known))})"
                )
            if not isinstance(url, str):
                raise ValueError("must be a URL string")
            endpoints[name] = validate_endpoint(url)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return endpoints


def _bounded(block: Mapping[str, Any], name: str) -> int:
    default, low, high = LIMITS[name]
    value = block.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name}: must be an integer from {low} to {high}")
    return value


class Api:
    """Clients for one account, shared by every collector thread of one scan."""

    def __init__(self, settings: Settings, timeout: float):
        self.settings = settings
        self.timeout = timeout
        self.calls: Counter[tuple[str, str]] = Counter()
        self._build_lock = threading.Lock()  # session and client creation
        self._count_lock = threading.Lock()  # never held for long: calls only count
        self._session: Any = None
        self._region = DEFAULT_REGION
        self._credentials: dict[str, str] = {}
        self._clients: dict[tuple[str, str], Any] = {}

    # -- sessions and clients -------------------------------------------------------------

    def session(self) -> Any:
        """The botocore session (credentials of the assumed role if configured), built once.

        botocore alone: boto3 would add its imports and S3 transfer hooks, which a
        read-only audit never uses.
        """
        session = self._session
        if session is None:
            with self._build_lock:
                if self._session is None:
                    self._session = self._new_session()
                session = self._session
        return session

    def _new_session(self) -> Any:
        from botocore.session import Session

        base = Session(profile=self.settings.profile)
        base.get_scoped_config()  # an unknown profile fails here, as the target's problem
        self._region = _default_region(base)
        if self.settings.role_arn:
            self._credentials = self._assume_role(base)
        return base

    def _assume_role(self, base: Any) -> dict[str, str]:
        """Temporary credentials of the audit role (with its external id when given)."""
        sts = base.create_client("sts", **self._client_kwargs("sts", self._region))
        extra = {"ExternalId": self.settings.external_id} if self.settings.external_id else {}
        creds = sts.assume_role(
            RoleArn=self.settings.role_arn, RoleSessionName=SESSION_NAME, **extra
        )["Credentials"]
        return {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }

    def default_region(self) -> str:
        """The profile's or environment's region, else us-east-1."""
        self.session()
        return self._region

    def client(self, service: str, region: str) -> Any:
        """One client per (service, region), created once under the lock, then shared.

        Looking an existing client up takes no lock, so threads calling through ready
        clients never wait for another service's client to be built.
        """
        client = self._clients.get((service, region))
        if client is not None:
            return client
        session = self.session()
        with self._build_lock:
            client = self._clients.get((service, region))
            if client is None:
                kwargs = self._client_kwargs(service, region) | self._credentials
                client = session.create_client(service, **kwargs)
                client.meta.events.register("before-call", self._count)
                if service == "s3control" and self.settings.endpoint_for(service, region):
                    client.meta.events.register("before-sign.s3-control", _strip_account_prefix)
                self._clients[(service, region)] = client
            return client

    def _client_kwargs(self, service: str, region: str) -> dict[str, Any]:
        from botocore.config import Config

        endpoint = self.settings.endpoint_for(service, region)
        config = Config(
            retries={"mode": "adaptive", "max_attempts": self.settings.max_attempts},
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            max_pool_connections=max(10, self.settings.max_workers * 2),
            s3={"addressing_style": "path"} if endpoint else None,
            user_agent_extra="rempart",
            # Only the endpoints the scope guard admitted: never AWS_ENDPOINT_URL* or a
            # profile's endpoint_url, which would send the calls where no guard looked.
            ignore_configured_endpoint_urls=True,  # type: ignore[call-arg]  # stubs lag botocore
        )
        return {"region_name": region, "endpoint_url": endpoint, "config": config}

    def _count(self, model: Any, **_: Any) -> None:
        with self._count_lock:
            self.calls[(model.service_model.service_name, model.name)] += 1

    # -- calls ----------------------------------------------------------------------------

    def call(
        self,
        service: str,
        region: str,
        operation: str,
        *,
        missing: Iterable[str] = (),
        **params: Any,
    ) -> dict[str, Any] | None:
        """One call; None when the error code is one of ``missing`` (the thing is absent)."""
        from botocore import xform_name

        try:
            method = getattr(self.client(service, region), xform_name(operation))
            return dict(method(**params))
        except Exception as exc:
            self._unless_missing(exc, service, operation, frozenset(missing))
            return None

    def pages(
        self,
        service: str,
        region: str,
        operation: str,
        *,
        missing: Iterable[str] = (),
        **params: Any,
    ) -> dict[str, Any] | None:
        """Every page of a paginated operation, merged (None when absent, as :meth:`call`)."""
        from botocore import xform_name

        client = self.client(service, region)
        name = xform_name(operation)
        if not client.can_paginate(name):
            return self.call(service, region, operation, missing=missing, **params)
        try:
            return dict(client.get_paginator(name).paginate(**params).build_full_result())
        except Exception as exc:
            self._unless_missing(exc, service, operation, frozenset(missing))
            return None

    @staticmethod
    def _unless_missing(
        exc: Exception, service: str, operation: str, missing: frozenset[str]
    ) -> None:
        """Absent things (``missing`` codes) are answers; anything else becomes CallFailed."""
        if error_code(exc) in missing:
            return
        raise CallFailed(problem_from(exc, iam_action(service, operation))) from exc


def _strip_account_prefix(request: Any, **_: Any) -> None:
    """S3 Control prefixes the host with the account id; a custom endpoint names its host.

    An address literal or a private host cannot take that prefix, so it is removed before
    signing (the signature then covers the host actually called).
    """
    parts = urlsplit(request.url)
    if _ACCOUNT_HOST_PREFIX.match(parts.netloc):
        request.url = urlunsplit(parts._replace(netloc=_ACCOUNT_HOST_PREFIX.sub("", parts.netloc)))


def not_offered(settings: Settings, service: str, resource_types: Iterable[str]) -> list[Problem]:
    """Problems saying a provider does not offer a service: its rules do not apply."""
    message = (
        f"the provider does not offer the {service} service "
        f"(endpoints configured: {', '.join(sorted(settings.endpoints)) or 'none'}); "
        "rules on it do not apply"
    )
    return [Problem(Reason.NOT_IMPLEMENTED, message, resource_type=t) for t in resource_types]
