"""What ``clouds.yaml`` says about a cloud, read without a single request.

openstacksdk reads the file from its usual search path (the current directory,
``~/.config/openstack``, ``/etc/openstack``) or from ``OS_CLIENT_CONFIG_FILE``, and merges
``secure.yaml``. Only what the scope needs leaves this module (the auth URL, the project
and how we authenticate); the credentials stay inside openstacksdk's config object,
which is handed to the connection and never to a fact, a problem or a log line.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from audit.models import Target

APP_CREDENTIAL = "v3applicationcredential"
SUPPORTED_AUTH = frozenset({"password", "v3password", APP_CREDENTIAL, "token", "v3token"})


@dataclass(frozen=True)
class CloudSpec:
    """The public part of a cloud's configuration."""

    name: str
    auth_url: str
    project: str | None
    """The project name or id given by the target or clouds.yaml (None: an application
    credential, whose project Keystone tells when it issues the token)."""
    region: str | None
    auth_type: str
    region_object: Any = None
    """openstacksdk's ``CloudRegion`` (holds the credentials; never printed)."""

    @property
    def uses_application_credential(self) -> bool:
        return self.auth_type == APP_CREDENTIAL


def load(target: Target, timeout: float | None = None) -> CloudSpec:
    """Read the target's cloud from clouds.yaml; ValueError (one line) when it cannot."""
    from openstack import config as os_config
    from openstack import exceptions

    project = target.param("project")
    extra: dict[str, Any] = {"api_timeout": timeout} if timeout else {}
    if project is not None:
        extra["project_id" if _is_id(project) else "project_name"] = project
    try:
        with warnings.catch_warnings():  # openstacksdk's notice about its InfluxDB support
            warnings.filterwarnings("ignore", message=".*InfluxDB.*")
            region = os_config.OpenStackConfig().get_one(cloud=target.host, **extra)
    except exceptions.ConfigException as exc:
        raise ValueError(f"clouds.yaml: {_first_line(exc)}") from None
    auth = dict(region.config.get("auth") or {})
    auth_type = str(region.config.get("auth_type") or "password")
    if auth_type not in SUPPORTED_AUTH:
        raise ValueError(f"cloud {target.host!r}: auth_type {auth_type!r} is not supported")
    auth_url = validate_auth_url(str(auth.get("auth_url") or ""))
    if project is None:
        project = auth.get("project_id") or auth.get("project_name")
    return CloudSpec(
        name=target.host,
        auth_url=auth_url,
        project=str(project) if project else None,
        region=region.get_region_name(),
        auth_type=auth_type,
        region_object=region,
    )


def validate_auth_url(value: str) -> str:
    """Keystone's URL: http(s), a host, an optional path; never credentials or a query."""
    split = urlsplit(value)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ValueError(f"auth_url {value!r} is not an http(s) URL")
    if "@" in split.netloc or split.query or split.fragment:
        raise ValueError("auth_url takes a scheme, a host, a port and a path only")
    try:
        split.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"auth_url {value!r} has an invalid port") from None
    return value.rstrip("/")


def base_url(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as the scope guard admits it."""
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc}"


def _is_id(value: str) -> bool:
    """Keystone project ids are 32 hexadecimal digits; anything else is a name."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
