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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from audit.errors import TargetError
from audit.models import Problem, Reason, Target
from checks.aws.errors import CallFailed, error_code, problem_from
from checks.aws.targets import (
    parse_regions,
    validate_endpoint,
    validate_role,
    validate_service,
)

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


def settings_for(target: Target, options: Mapping[str, Any]) -> Settings:
    """Merge the inventory ``aws:`` block with the target (the target wins); validate both."""
    where = "inventory aws:"
    regions = options.get("regions") or ()
    if isinstance(regions, str):
        regions = parse_regions(regions, where)
    else:
        regions = parse_regions(",".join(str(r) for r in regions), where) if regions else ()
    if target.param("regions"):
        regions = parse_regions(target.param("regions") or "", target.uri)
    endpoint = target.param("endpoint") or _opt_endpoint(options.get("endpoint"), where)
    role = target.param("role") or options.get("role")
    return Settings(
        profile=(target.host if target.host != "default" else None) or options.get("profile"),
        regions=tuple(regions),
        endpoint=endpoint,
        endpoints=_endpoints(options.get("endpoints") or {}, where),
        role_arn=validate_role(str(role), where) if role else None,
        external_id=target.param("external_id") or options.get("external_id"),
        max_attempts=_positive(options.get("max_attempts", 4), "max_attempts"),
        max_workers=_positive(options.get("max_workers", 8), "max_workers"),
    )


def _opt_endpoint(value: Any, where: str) -> str | None:
    return validate_endpoint(str(value), where) if value else None


def _endpoints(value: Any, where: str) -> dict[str, str]:
    """Validate the per-service endpoint map."""
    if not isinstance(value, Mapping):
        raise TargetError(f"{where} endpoints must map a service name to a URL")
    return {
        validate_service(str(k), where): validate_endpoint(str(v), where) for k, v in value.items()
    }


def _positive(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TargetError(f"inventory aws: {name} must be a positive integer")
    return value


class Api:
    """Clients for one account, shared by every collector thread of one scan."""

    def __init__(self, settings: Settings, timeout: float):
        self.settings = settings
        self.timeout = timeout
        self.calls: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[tuple[str, str], Any] = {}

    # -- sessions and clients -------------------------------------------------------------

    def session(self) -> Any:
        """The boto3 session (assumed role if configured), built once."""
        with self._lock:
            if self._session is None:
                self._session = self._new_session()
            return self._session

    def _new_session(self) -> Any:
        import boto3

        base = boto3.Session(profile_name=self.settings.profile)
        if not self.settings.role_arn:
            return base
        sts = base.client("sts", **self._client_kwargs("sts", base.region_name or DEFAULT_REGION))
        extra = {"ExternalId": self.settings.external_id} if self.settings.external_id else {}
        creds = sts.assume_role(
            RoleArn=self.settings.role_arn, RoleSessionName=SESSION_NAME, **extra
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=base.region_name,
        )

    def default_region(self) -> str:
        """The profile's or environment's region, else us-east-1."""
        return str(self.session().region_name or DEFAULT_REGION)

    def client(self, service: str, region: str) -> Any:
        """One client per (service, region), created under the lock and then shared."""
        session = self.session()
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                client = session.client(service, **self._client_kwargs(service, region))
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
        )
        return {"region_name": region, "endpoint_url": endpoint, "config": config}

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
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
