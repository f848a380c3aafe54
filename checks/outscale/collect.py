"""Observe one Outscale account through its own API (OAPI), with osc-sdk-python.

Order of a scan: read the profile (no request), mount a transport guard on the SDK's
session (only the admitted API hosts may be reached), read the account id
(``ReadAccounts``) and refuse an account outside the declared scope before anything else,
then the account's API access policy, API access rules and access keys (global), and per
region the volumes, snapshots, public IPs and security groups. Every failed call is data:
a 401/403 is ``access_denied`` naming the OAPI call, a 429 (or an OAPI throttling error)
after the SDK's retries is ``throttled``, a 5xx or a refused connection ``unreachable``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from audit.models import Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext
from checks.clouddata import CallFailed
from checks.netports import ADMIN_PORTS, DATA_PORTS, WORLD
from checks.outscale.config import ProfileSpec, gateway, load

ACCOUNT = "outscale.account"
RULE = "outscale.api_access_rule"
KEY = "outscale.access_key"
VOLUME = "outscale.volume"
SNAPSHOT = "outscale.snapshot"
PUBLIC_IP = "outscale.public_ip"
SG = "outscale.security_group"
CALLS: dict[str, tuple[str, ...]] = {
    "ReadAccounts": (ACCOUNT,),
    "ReadApiAccessPolicy": (ACCOUNT,),
    "ReadApiAccessRules": (RULE,),
    "ReadAccessKeys": (KEY,),
    "ReadVolumes": (VOLUME,),
    "ReadSnapshots": (SNAPSHOT,),
    "ReadPublicIps": (PUBLIC_IP,),
    "ReadSecurityGroups": (SG,),
}
"""Every OAPI call the family makes, and the resource types it feeds (the permissions)."""
THROTTLING = frozenset({"TooManyRequests", "RequestLimitExceeded", "Throttling"})


@dataclass
class Scan:
    """One account's scan: the gateways per region, the calls made, what was found."""

    spec: ProfileSpec
    target: Target
    gateways: dict[str, Any]
    calls: dict[str, int] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    account_id: str = ""

    def call(self, region: str, action: str, **params: Any) -> dict[str, Any]:
        """One OAPI call; a failure raises CallFailed with the problem to record."""
        self.calls[action] = self.calls.get(action, 0) + 1
        try:
            answer = self.gateways[region].api(action, **params)
        except Exception as exc:
            raise CallFailed(problem_from(exc, action)) from None
        if not isinstance(answer, dict):
            raise CallFailed(Problem(Reason.UNREACHABLE, f"{action}: unreadable answer"))
        return answer

    def add(self, type_: str, key: str, facts: dict[str, Any], **unknown: Problem) -> None:
        self.resources.append(
            Resource(type_, key, self.target.uri, self.target.system, facts, dict(unknown))
        )

    def key(self, region: str, kind: str, ident: Any) -> str:
        return f"outscale:{region}:{self.account_id}:{kind}/{ident}"


def problem_from(exc: BaseException, action: str) -> Problem:
    """Classify a failed OAPI call (requests' HTTPError carries the answer)."""
    response = getattr(exc, "response", None)
    status = int(getattr(response, "status_code", 0) or 0)
    kind = _error_type(response)
    if status in (401, 403):
        return Problem(Reason.ACCESS_DENIED, f"{action} denied (HTTP {status}): needs {action}")
    if status == 429 or kind in THROTTLING:
        return Problem(Reason.THROTTLED, f"{action} throttled after retries")
    if status >= 500 or status == 0:
        name = f"HTTP {status}" if status else type(exc).__name__
        if "OutOfScope" in type(exc).__name__:
            return Problem(Reason.REFUSED, f"{action}: {exc}")
        return Problem(Reason.UNREACHABLE, f"{action}: no usable answer ({name})")
    return Problem(Reason.BUG, f"{action}: unexpected HTTP {status} {kind}".rstrip())


def _error_type(response: Any) -> str:
    try:
        errors = response.json().get("Errors") or []
        return str(errors[0].get("Type", "")) if errors else ""
    except Exception:
        return ""


def collect(target: Target, ctx: CheckContext) -> Observation:
    """The :data:`audit.plugins.CollectFn` of the outscale family."""
    started = time.monotonic()
    try:
        spec = load(target)
    except ValueError as exc:
        return Observation(target, problems=(Problem(Reason.NOT_FOUND, str(exc)),))
    attempts = int(ctx.family_options("outscale").get("max_attempts", 3))
    regions = spec.regions(target)
    admitted = {_netloc(spec.api_url(r)) for r in regions}
    gateways = {r: _guarded(gateway(spec, r, attempts), admitted) for r in regions}
    scan = Scan(spec, target, gateways)
    try:
        observe(scan, ctx, regions)
    except CallFailed as failed:
        return Observation(target, problems=(failed.problem,))
    return Observation(
        target, tuple(scan.resources), tuple(scan.problems), time.monotonic() - started
    )


def observe(scan: Scan, ctx: CheckContext, regions: tuple[str, ...]) -> None:
    """Account and scope first, then the account's settings, then each region."""
    home = regions[0]
    accounts = scan.call(home, "ReadAccounts").get("Accounts") or [{}]
    scan.account_id = str(accounts[0].get("AccountId") or "")
    refusal = _refusal(ctx, scan.account_id)
    if refusal is not None:
        raise CallFailed(Problem(Reason.REFUSED, refusal))
    _account(scan, home)
    for collect_one in (_rules, _keys):
        _guard(scan, home, collect_one)
    for region in regions:
        for collect_one in (_volumes, _snapshots, _public_ips, _security_groups):
            _guard(scan, region, collect_one)


def _refusal(ctx: CheckContext, account_id: str) -> str | None:
    if not ctx.scope.is_declared:
        return None
    allowed = ctx.scope.block("outscale").get("accounts", ())
    if account_id in allowed:
        return None
    return (
        f"account {account_id or '(unknown)'} is outside the declared scope "
        f"(scope.outscale.accounts: {', '.join(allowed) or 'none'}); nothing was collected"
    )


def _guard(scan: Scan, region: str, fn: Callable[[Scan, str], None]) -> None:
    try:
        fn(scan, region)
    except CallFailed as failed:
        action = failed.problem.message.split(" ", 1)[0].rstrip(":")
        for type_ in CALLS.get(action, ()):
            message = f"{region}: {failed.problem.message}"
            scan.problems.append(replace(failed.problem, message=message, resource_type=type_))


def _account(scan: Scan, region: str) -> None:
    facts: dict[str, Any] = {"account_id": scan.account_id}
    unknown: dict[str, Problem] = {}
    try:
        policy = scan.call(region, "ReadApiAccessPolicy").get("ApiAccessPolicy") or {}
    except CallFailed as failed:
        for name in ("max_access_key_expiration_seconds", "has_key_expiry_limit"):
            unknown[name] = failed.problem
        unknown["require_trusted_env"] = failed.problem
    else:
        seconds = int(policy.get("MaxAccessKeyExpirationSeconds") or 0)
        facts.update(
            max_access_key_expiration_seconds=seconds,
            has_key_expiry_limit=seconds > 0,
            require_trusted_env=bool(policy.get("RequireTrustedEnv")),
        )
    scan.add(ACCOUNT, f"outscale:account:{scan.account_id}", facts, **unknown)


def _rules(scan: Scan, region: str) -> None:
    for rule in scan.call(region, "ReadApiAccessRules").get("ApiAccessRules") or []:
        ranges = [str(r) for r in rule.get("IpRanges") or []]
        cas = [str(c) for c in rule.get("CaIds") or []]
        scan.add(
            RULE,
            f"outscale:account:{scan.account_id}:api-access-rule/{rule.get('ApiAccessRuleId')}",
            {
                "id": str(rule.get("ApiAccessRuleId")),
                "description": str(rule.get("Description") or ""),
                "ip_ranges": ranges,
                "ca_ids": cas,
                "cns": [str(c) for c in rule.get("Cns") or []],
                "requires_client_certificate": bool(cas),
                "is_world_open": bool(WORLD & set(ranges)) and not cas,
            },
        )


def _keys(scan: Scan, region: str) -> None:
    for key in scan.call(region, "ReadAccessKeys").get("AccessKeys") or []:
        expires = key.get("ExpirationDate")
        scan.add(
            KEY,
            f"outscale:account:{scan.account_id}:access-key/{key.get('AccessKeyId')}",
            {
                "id": str(key.get("AccessKeyId")),
                "state": str(key.get("State") or ""),
                "is_active": key.get("State") == "ACTIVE",
                "expiration_date": expires,
                "has_expiry": bool(expires),
                "days_to_expiry": _days_until(expires),
            },
        )


def _volumes(scan: Scan, region: str) -> None:
    for volume in scan.call(region, "ReadVolumes").get("Volumes") or []:
        links = volume.get("LinkedVolumes") or []
        scan.add(
            VOLUME,
            scan.key(region, "volume", volume.get("VolumeId")),
            {
                "id": str(volume.get("VolumeId")),
                "region": region,
                "state": str(volume.get("State") or ""),
                "volume_type": str(volume.get("VolumeType") or ""),
                "size_gib": int(volume.get("Size") or 0),
                "is_attached": bool(links),
                "attached_to": sorted({str(v.get("VmId")) for v in links if v.get("VmId")}),
            },
        )


def _snapshots(scan: Scan, region: str) -> None:
    answer = scan.call(region, "ReadSnapshots", Filters={"AccountIds": [scan.account_id]})
    for snap in answer.get("Snapshots") or []:
        perms = snap.get("PermissionsToCreateVolume") or {}
        scan.add(
            SNAPSHOT,
            scan.key(region, "snapshot", snap.get("SnapshotId")),
            {
                "id": str(snap.get("SnapshotId")),
                "region": region,
                "volume_id": str(snap.get("VolumeId") or ""),
                "is_public": bool(perms.get("GlobalPermission")),
                "shared_with_accounts": sorted(str(a) for a in perms.get("AccountIds") or []),
            },
        )


def _public_ips(scan: Scan, region: str) -> None:
    for ip in scan.call(region, "ReadPublicIps").get("PublicIps") or []:
        scan.add(
            PUBLIC_IP,
            scan.key(region, "public-ip", ip.get("PublicIpId")),
            {
                "id": str(ip.get("PublicIpId")),
                "region": region,
                "public_ip": str(ip.get("PublicIp") or ""),
                "vm_id": ip.get("VmId"),
                "is_attached": bool(ip.get("VmId") or ip.get("NicId")),
            },
        )


def _security_groups(scan: Scan, region: str) -> None:
    for group in scan.call(region, "ReadSecurityGroups").get("SecurityGroups") or []:
        inbound = group.get("InboundRules") or []
        scan.add(
            SG,
            scan.key(region, "security-group", group.get("SecurityGroupId")),
            {
                "id": str(group.get("SecurityGroupId")),
                "name": str(group.get("SecurityGroupName") or ""),
                "region": region,
                "world_open_admin_ports": _world_open(inbound, ADMIN_PORTS),
                "world_open_ports": _world_open(inbound, DATA_PORTS),
            },
        )


def _world_open(rules: list[dict[str, Any]], ports: tuple[int, ...]) -> list[int]:
    found = set()
    for rule in rules:
        if not WORLD & {str(r) for r in rule.get("IpRanges") or []}:
            continue
        protocol = str(rule.get("IpProtocol") or "-1")
        if protocol not in ("-1", "tcp", "udp", "6", "17"):
            continue
        low, high = _port(rule.get("FromPortRange"), 0), _port(rule.get("ToPortRange"), 65535)
        if protocol == "-1":
            low, high = 0, 65535
        found |= {p for p in ports if low <= p <= high}
    return sorted(found)


def _port(value: Any, default: int) -> int:
    return (
        int(value) if isinstance(value, int | str) and str(value).lstrip("-").isdigit() else default
    )


def _days_until(value: Any) -> int | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).days


def _netloc(url: str) -> str:
    split = urlsplit(url)
    default = 443 if split.scheme == "https" else 80
    return f"{split.scheme}://{(split.hostname or '').lower()}:{split.port or default}"


class OutOfScope(Exception):
    """A request was about to leave for a host the scope guard did not admit."""


def _guarded(gw: Any, admitted: set[str]) -> Any:
    """Mount an adapter on the SDK's session that refuses hosts never admitted."""
    from requests.adapters import HTTPAdapter

    class GuardAdapter(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            if _netloc(str(request.url)) not in admitted:
                raise OutOfScope(f"{urlsplit(str(request.url)).netloc} was not admitted")
            return super().send(request, *args, **kwargs)

    session = gw.session
    session.mount("http://", GuardAdapter())
    session.mount("https://", GuardAdapter())
    return gw
