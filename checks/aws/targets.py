"""Parse ``aws://[profile][?regions=a,b&endpoint=URL&role=ARN&external_id=X]`` targets.

Everything a user types is validated here, once: the profile name, the region names, the
role ARN, the external id and the endpoint URL (http or https, a valid host, a port in
range, and never credentials in it). The canonical URI orders the parameters so the same
account written two ways is the same target.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlencode, urlsplit

from audit.errors import TargetError
from audit.models import Target
from audit.uri import format_host, normalise_host, query_params, refuse_extras, split_port

PARAMS = frozenset({"regions", "endpoint", "role", "external_id"})
_PROFILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=@-]{0,63}$")  # never an option-like "-x"
_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d{1,2}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_PLACEHOLDER = "region-placeholder"
_SERVICE = re.compile(r"^[a-z0-9-]{2,40}$")


def parse(split: SplitResult, raw: str) -> Target:
    """Validate an ``aws://`` URI into a Target whose host is the profile name."""
    refuse_extras(split, raw)
    if ":" in split.netloc:
        raise TargetError(f"{raw!r}: an aws:// target takes a profile name, not a port")
    profile = split.netloc
    try:
        if profile:
            validate_profile(profile)
        params = tuple(
            (key, _validate_param(key, value))
            for key, value in sorted(query_params(split, raw, PARAMS))
        )
    except ValueError as exc:
        raise TargetError(f"{raw!r}: {exc}") from None
    query = f"?{urlencode(params, safe=',:/[]{}')}" if params else ""
    uri = f"aws://{profile}{query}"
    return Target(uri=uri, scheme="aws", host=profile or "default", params=params)


def _validate_param(key: str, value: str) -> str:
    """Check one query parameter and return its canonical form."""
    if key == "regions":
        return ",".join(parse_regions(value))
    if key == "endpoint":
        return validate_endpoint(value)
    if key == "role":
        return validate_role(value)
    return validate_external_id(value)


# The validators below raise ValueError with a message that names no location: the
# target parser and the inventory's ``aws:`` block each say where the value came from.


def validate_profile(value: str) -> str:
    """A named profile of the AWS configuration files."""
    if not _PROFILE.match(value):
        raise ValueError(f"{value!r} is not a valid profile name")
    return value


def parse_regions(value: str) -> tuple[str, ...]:
    """A comma-separated list of region names, deduplicated in order."""
    regions = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not regions:
        raise ValueError("regions is empty")
    for region in regions:
        if not _REGION.match(region):
            raise ValueError(f"{region!r} is not a region name (like eu-west-3)")
    return regions


def validate_role(value: str) -> str:
    """An IAM role ARN to assume."""
    if not _ROLE_ARN.match(value):
        raise ValueError("role must be an IAM role ARN (arn:aws:iam::<12 digits>:role/..)")
    return value


def validate_external_id(value: str) -> str:
    """The external id the role's trust policy expects (AWS's own length and alphabet)."""
    if not _EXTERNAL_ID.match(value):
        raise ValueError("external_id must be 2-1224 characters of [\\w+=,.@:/-]")
    return value


def validate_service(name: str) -> str:
    """A botocore service name used as a key of per-service endpoints (``s3``, ``ec2``...)."""
    if not _SERVICE.match(name):
        raise ValueError(f"{name!r} is not a service name")
    return name


def validate_endpoint(value: str) -> str:
    """An http(s) endpoint URL: scheme, host and port only; credentials are refused.

    ``{region}`` may stand in a host label so one entry serves every region (providers
    such as 3DS Outscale have a host per service and region).
    """
    templated = "{region}" in value
    split = urlsplit(value.replace("{region}", _PLACEHOLDER))
    if split.scheme not in ("http", "https"):
        raise ValueError("endpoint must be an http:// or https:// URL")
    if "@" in split.netloc:
        raise ValueError("credentials do not belong in an endpoint URL")
    if split.path not in ("", "/") or split.query or split.fragment:
        raise ValueError("endpoint takes a scheme, a host and a port only")
    try:
        host = normalise_host(split.hostname or "", value)
        port = split_port(split, value)
    except TargetError as exc:
        raise ValueError(exc.detail.replace(_PLACEHOLDER, "{region}")) from None
    netloc = format_host(host) + (f":{port}" if port else "")
    if templated:
        netloc = netloc.replace(_PLACEHOLDER, "{region}")
    return f"{split.scheme}://{netloc}"
