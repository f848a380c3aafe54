"""AWS accounts (and AWS-compatible clouds) observed through read-only API calls.

Target: ``aws://[profile][?regions=a,b&endpoint=URL&role=ARN&external_id=X]``. The
inventory's ``aws:`` block may add ``profile``, ``role``, ``external_id``, ``regions``,
``endpoint``, per-service ``endpoints`` (``{s3: https://..., ec2: https://fcu.{region}...}``:
a provider then offers only the services listed), ``max_attempts`` and ``max_workers``.
That block is validated when the inventory loads (``FAMILY.validate_options``, the same
parser the scan uses), so a typo is exit 2 with the file and line, before anything is sent.
When the scan is planned, ``FAMILY.admit`` refuses what the scope decides without a call
(an account or role outside it, AWS itself from an inventory with no scope) and hands
every endpoint to the scope guard, which admits it like a network target (plain http to
loopback only), so no signed request leaves for a host outside the scope.

Resource types (facts documented in :mod:`checks.aws.docs` and by
``rempart checks list --facts``): ``aws.account``, ``aws.iam.user``, ``aws.iam.policy``,
``aws.iam.server_certificate``, ``aws.s3.bucket``, ``aws.ec2.security_group``,
``aws.ec2.network_acl``, ``aws.ec2.instance``, ``aws.ec2.volume``, ``aws.ec2.vpc``,
``aws.cloudtrail.trail``, ``aws.kms.key``, ``aws.rds.instance``, ``aws.efs.file_system``.
Keys are ARNs.

A denied call leaves the fact unknown with ``access_denied`` naming the IAM action; a
service a provider does not offer yields ``not_implemented`` problems for its resource
types. ``FAMILY.permissions()`` returns the read-only IAM policy covering every call made.
Nothing here imports botocore until a scan starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from audit.models import Observation, Target
from audit.plugins import CheckContext, CheckFamily, Reach, Scope
from checks.aws.docs import RESOURCE_TYPES
from checks.aws.targets import parse

if TYPE_CHECKING:
    from audit.labkit import DemoContext, DemoPart


def collect(target: Target, ctx: CheckContext) -> Observation:
    """Observe one account (imports the collectors, and later botocore, on first use)."""
    from checks.aws.collect import collect as run

    return run(target, ctx)


def permissions() -> dict[str, Any]:
    """The read-only IAM policy document covering exactly the calls the collectors make."""
    from checks.aws.permissions import policy_document

    return policy_document()


def validate_options(block: Any) -> None:
    """Check the inventory's ``aws:`` block when the inventory loads (ValueError: exit 2).

    The same parser builds the scan's settings, so what loads is what runs.
    """
    from checks.aws.session import parse_options

    parse_options(block)


def admit(target: Target, scope: Scope, options: Mapping[str, Any]) -> tuple[Reach, ...]:
    """Refuse what the scope decides without a call; return the endpoints to admit.

    Runs when the scan is planned, before any session exists (see :mod:`checks.aws.scope`).
    """
    from checks.aws.scope import admit as check

    return check(target, scope, options)


def validate_scope(block: Any) -> Mapping[str, tuple[str, ...]]:
    """The inventory's ``scope: {aws: {accounts: [...]}}``, checked when it loads."""
    from checks.aws.scope import validate_scope as check

    return check(block)


def _parse(split: SplitResult, raw: str) -> Target:
    return parse(split, raw)


def _demo(ctx: DemoContext) -> DemoPart:
    """This family's part of ``rempart demo``; the lab is imported only when it runs."""
    from checks.aws.lab import demo_part

    return demo_part(ctx)


FAMILY = CheckFamily(
    name="aws",
    description="AWS accounts and AWS-compatible clouds: IAM, S3, EC2, CloudTrail, KMS, RDS, "
    "EFS and account guard rails, for the CIS AWS Foundations Benchmark v3.0",
    schemes=("aws",),
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
