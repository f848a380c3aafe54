"""Parse ``openstack://CLOUD[?regions=R1,R2&project=P]`` targets.

``CLOUD`` names an entry of ``clouds.yaml`` (found by openstacksdk on its usual search
path, or in ``OS_CLIENT_CONFIG_FILE``); the URI never carries a credential. Region and
project names are validated here, once, and the canonical URI orders the parameters so
one project written two ways is one target.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlencode

from audit.errors import TargetError
from audit.models import Target
from audit.uri import query_params, refuse_extras

PARAMS = frozenset({"regions", "project"})
_CLOUD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")  # never an option-like "-x"
_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PROJECT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


def parse(split: SplitResult, raw: str) -> Target:
    """Validate an ``openstack://`` URI into a Target whose host is the cloud's name."""
    refuse_extras(split, raw)
    cloud = split.netloc
    try:
        validate_cloud(cloud)
        params = tuple(
            (key, _validate_param(key, value))
            for key, value in sorted(query_params(split, raw, PARAMS))
        )
    except ValueError as exc:
        raise TargetError(f"{raw!r}: {exc}") from None
    query = f"?{urlencode(params, safe=',')}" if params else ""
    return Target(uri=f"openstack://{cloud}{query}", scheme="openstack", host=cloud, params=params)


def _validate_param(key: str, value: str) -> str:
    if key == "regions":
        return ",".join(parse_regions(value))
    return validate_project(value)


def validate_cloud(value: str) -> str:
    """The name of a ``clouds.yaml`` entry (a port or a path is refused)."""
    if not value:
        raise ValueError("an openstack:// target names a cloud of clouds.yaml (openstack://NAME)")
    if not _CLOUD.match(value):
        raise ValueError(f"{value!r} is not a cloud name of clouds.yaml")
    return value


def parse_regions(value: str) -> tuple[str, ...]:
    """A comma-separated list of region names (RegionOne, GRA11...), deduplicated in order."""
    regions = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not regions:
        raise ValueError("regions is empty")
    for region in regions:
        if not _REGION.match(region):
            raise ValueError(f"{region!r} is not a region name")
    return regions


def validate_project(value: str) -> str:
    """A project name or id (Keystone ids are 32 hex digits; names are kept as typed)."""
    if not _PROJECT.match(value):
        raise ValueError(f"{value!r} is not a project name or id")
    return value
