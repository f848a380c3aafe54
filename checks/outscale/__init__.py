"""Outscale accounts read through Outscale's own API (OAPI), with osc-sdk-python.

Target: ``outscale://PROFILE[?regions=R1,R2]`` (a profile of ``~/.osc/config.json`` or
``OSC_CONFIG_FILE``). Why a scheme of its own rather than ``aws://...?provider=outscale``:
the AWS-compatible API (FCU, LBU, OOS) is already read by the aws family through its
endpoints; what only Outscale has (the API access policy, API access rules with client
CAs, access keys with expiry) lives in the OAPI, a different protocol (JSON actions,
OSC4 signatures or login and password) with its own client, profile file, permissions
and account scope. One scheme per client keeps one contract per family; security groups
read here carry facts but no rule of ``outscale-baseline``, so nothing is judged twice.

Scope: ``scope: {outscale: {accounts: [12-digit ids]}}``; the OAPI endpoint of every
region passes the scope guard when the scan is planned, and a transport guard refuses
any other host. Errors are data: ``access_denied`` names the OAPI call, ``throttled``
after the SDK's retries. Nothing imports osc-sdk-python until a scan starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult

from audit.models import Observation, Target
from audit.plugins import CheckContext, CheckFamily, Reach, Scope
from checks.outscale.docs import RESOURCE_TYPES
from checks.outscale.targets import parse


def collect(target: Target, ctx: CheckContext) -> Observation:
    """Observe one account (imports osc-sdk-python on first use)."""
    from checks.outscale.collect import collect as run

    return run(target, ctx)


def permissions() -> dict[str, Any]:
    """The OAPI calls a read-only audit identity must be allowed, and what each feeds."""
    from checks.outscale.collect import CALLS

    return {"calls": [{"action": a, "feeds": list(t)} for a, t in sorted(CALLS.items())]}


def validate_options(block: Any) -> None:
    """``outscale: {max_attempts: 1-10}`` (ValueError: exit 2)."""
    if not isinstance(block, Mapping) or set(block) - {"max_attempts"}:
        raise ValueError("expected {max_attempts: 1-10}")
    attempts = block.get("max_attempts", 3)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 10:
        raise ValueError("max_attempts: expected an integer from 1 to 10")


def admit(target: Target, scope: Scope, options: Mapping[str, Any]) -> tuple[Reach, ...]:
    """Refuse what the scope decides without a request; return the OAPI endpoints."""
    from checks.outscale.scope import admit as check

    return check(target, scope, options)


def validate_scope(block: Any) -> Mapping[str, tuple[str, ...]]:
    """The inventory's ``scope: {outscale: {accounts: [...]}}``."""
    from checks.outscale.scope import validate_scope as check

    return check(block)


def _parse(split: SplitResult, raw: str) -> Target:
    return parse(split, raw)


FAMILY = CheckFamily(
    name="outscale",
    description="Outscale accounts through the OAPI: API access policy and rules, access keys, "
    "volumes, snapshots, public IPs, security groups",
    schemes=("outscale",),
    resource_types=RESOURCE_TYPES,
    parse=_parse,
    collect=collect,
    permissions=permissions,
    validate_options=validate_options,
    scope_kind="account",
    admit=admit,
    validate_scope=validate_scope,
)
