"""Parse ``outscale://PROFILE[?regions=R1,R2]`` targets.

``PROFILE`` names a profile of osc-sdk-python's configuration (``~/.osc/config.json``, or
``OSC_CONFIG_FILE``), the file oapi-cli and the Outscale SDKs share; the URI never carries
a credential. The canonical URI orders the regions so one account written two ways is one
target.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlencode

from audit.errors import TargetError
from audit.models import Target
from audit.uri import query_params, refuse_extras

PARAMS = frozenset({"regions"})
_PROFILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_REGION = re.compile(r"^[a-z]+(-[a-z0-9]+)+-\d{1,2}$")  # eu-west-2, cloudgouv-eu-west-1


def parse(split: SplitResult, raw: str) -> Target:
    """Validate an ``outscale://`` URI into a Target whose host is the profile name."""
    refuse_extras(split, raw)
    profile = split.netloc or "default"
    try:
        if not _PROFILE.match(profile):
            raise ValueError(f"{profile!r} is not a profile name")
        params = tuple(
            (key, ",".join(parse_regions(value)))
            for key, value in sorted(query_params(split, raw, PARAMS))
        )
    except ValueError as exc:
        raise TargetError(f"{raw!r}: {exc}") from None
    query = f"?{urlencode(params, safe=',')}" if params else ""
    return Target(
        uri=f"outscale://{profile}{query}", scheme="outscale", host=profile, params=params
    )


def parse_regions(value: str) -> tuple[str, ...]:
    """Region names (eu-west-2, cloudgouv-eu-west-1...), deduplicated in order."""
    regions = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not regions:
        raise ValueError("regions is empty")
    for region in regions:
        if not _REGION.match(region):
            raise ValueError(f"{region!r} is not a region name (like cloudgouv-eu-west-1)")
    return regions
