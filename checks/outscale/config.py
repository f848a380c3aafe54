"""What the osc-sdk-python profile says, read without a request, and the gateway built from it.

The profile (``~/.osc/config.json`` or ``OSC_CONFIG_FILE``, and the ``OSC_*`` variables)
holds the access key, its secret or a login and password; they stay inside the SDK's
profile object, never in a fact, a problem or a log line. Only the region and the API
endpoint leave this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from audit.models import Target


@dataclass(frozen=True)
class ProfileSpec:
    """The public part of a profile: its name, default region and endpoint per region."""

    name: str
    region: str
    endpoint: str | None
    """The profile's own ``endpoints.api`` (None: Outscale's ``api.<region>.outscale.com``)."""
    protocol: str

    def api_url(self, region: str) -> str:
        """The OAPI base URL for a region (``.../api/v1``)."""
        if self.endpoint:
            return self.endpoint.rstrip("/")
        return f"{self.protocol}://api.{region}.outscale.com/api/v1"

    def regions(self, target: Target) -> tuple[str, ...]:
        given = target.param("regions")
        return tuple(given.split(",")) if given else (self.region,)


def load(target: Target) -> ProfileSpec:
    """Read the target's profile; ValueError (one line) when it cannot be read."""
    from osc_sdk_python.credentials import Profile

    try:
        profile = Profile.from_standard_configuration(None, target.host)
    except Exception as exc:  # the SDK raises bare exceptions for a missing profile
        raise ValueError(f"osc profile {target.host!r}: {_first_line(exc)}") from None
    endpoint = getattr(profile.endpoints, "api", None)
    if endpoint is not None:
        _validate_endpoint(str(endpoint))
    return ProfileSpec(
        name=target.host,
        region=str(profile.region),
        endpoint=str(endpoint) if endpoint else None,
        protocol=str(profile.protocol or "https"),
    )


def _validate_endpoint(value: str) -> None:
    split = urlsplit(value)
    if split.scheme not in ("http", "https") or not split.hostname or "@" in split.netloc:
        raise ValueError(f"endpoints.api {value!r} is not an http(s) URL")


def base_url(url: str) -> str:
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc}"


def gateway(spec: ProfileSpec, region: str, attempts: int) -> Any:
    """osc-sdk-python's call layer for one region (no request is sent yet).

    ``Call`` is what the SDK's ``Gateway`` sends every action through (profile, OSC4
    signature, retries with backoff); the Gateway itself first parses the 1 MB OpenAPI
    file with a pure-Python YAML reader, about 3 s per region, to check parameters that
    this family writes itself.
    """
    from osc_sdk_python.call import Call

    return Call(
        limiter=None,
        profile=spec.name,
        region=region,
        max_retries=attempts - 1,
        retry_backoff_factor=0.2,
        retry_backoff_jitter=0.0,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
