"""OpenStack projects (OVHcloud Public Cloud, Infomaniak, State clouds) read through their APIs.

Target: ``openstack://CLOUD[?regions=R1,R2&project=P]``: ``CLOUD`` names an entry of
``clouds.yaml``, which openstacksdk finds on its usual search path or in
``OS_CLIENT_CONFIG_FILE`` (passwords and application credentials alike; secrets stay
there, never in a target, a fact, a problem or a log line). The inventory's ``scope:``
gains ``openstack: {auth_urls: [...], projects: [...]}``: when the scan is planned,
:func:`admit` reads the cloud's entry (no request), refuses an undeclared auth URL or
project, and hands the auth URL to the scope guard; after the token, every catalogue
endpoint passes :meth:`ScopeGuard.admit_derived` before its first request.

Resource types (facts in :mod:`checks.openstack.docs`, ``rempart checks list --facts``):
``openstack.project``, ``openstack.network.security_group``, ``openstack.compute.server``,
``openstack.blockstorage.volume``, ``openstack.objectstorage.container``,
``openstack.image``, ``openstack.identity.user``,
``openstack.identity.application_credential``, ``openstack.loadbalancer.listener``.

Errors are data: a 403 leaves the facts unknown with ``access_denied`` naming the call
and its policy rule, a 429 after retries is ``throttled``, a service absent from the
catalogue is ``not_implemented``. ``FAMILY.permissions()`` lists every call and the
policy rule it needs. Nothing here imports openstacksdk until a scan starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from audit.models import Observation, Target
from audit.plugins import CheckContext, CheckFamily, Reach, Scope
from checks.openstack.docs import RESOURCE_TYPES
from checks.openstack.targets import parse

if TYPE_CHECKING:
    from audit.labkit import DemoContext, DemoPart


def collect(target: Target, ctx: CheckContext) -> Observation:
    """Observe one project (imports the collectors, and later openstacksdk, on first use)."""
    from checks.openstack.collect import collect as run

    return run(target, ctx)


def permissions() -> dict[str, Any]:
    """The read-only role and every call it must allow, with its policy rule."""
    from checks.openstack.permissions import document

    return document()


def validate_options(block: Any) -> None:
    """Check the inventory's ``openstack:`` block when it loads (ValueError: exit 2)."""
    from checks.openstack.session import parse_options

    parse_options(block)


def admit(target: Target, scope: Scope, options: Mapping[str, Any]) -> tuple[Reach, ...]:
    """Refuse what the scope decides without a request; return the auth URL to admit."""
    from checks.openstack.scope import admit as check

    return check(target, scope, options)


def validate_scope(block: Any) -> Mapping[str, tuple[str, ...]]:
    """The inventory's ``scope: {openstack: {auth_urls: [...], projects: [...]}}``."""
    from checks.openstack.scope import validate_scope as check

    return check(block)


def _parse(split: SplitResult, raw: str) -> Target:
    return parse(split, raw)


def _demo(ctx: DemoContext) -> DemoPart:
    """This family's part of ``rempart demo``; the lab is imported only when it runs."""
    from checks.openstack.lab import demo_part

    return demo_part(ctx)


FAMILY = CheckFamily(
    name="openstack",
    description="OpenStack projects (OVHcloud, Infomaniak, State clouds): security groups, "
    "servers, volumes, containers, images, Keystone users and application credentials, "
    "Octavia listeners",
    schemes=("openstack",),
    resource_types=RESOURCE_TYPES,
    parse=_parse,
    collect=collect,
    permissions=permissions,
    validate_options=validate_options,
    scope_kind="account",
    admit=admit,
    validate_scope=validate_scope,
    demo=_demo,
)
