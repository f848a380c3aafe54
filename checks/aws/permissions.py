"""The read-only IAM policy an audit role needs: exactly the actions the collectors call."""

from __future__ import annotations

from typing import Any


def actions() -> list[str]:
    """Every IAM action some collector declares (plus STS identity), sorted."""
    from checks.aws.collectors import ALL
    from checks.aws.session import iam_action

    declared = {iam_action(service, op) for c in ALL for service, op in c.operations}
    declared |= {"sts:GetCallerIdentity", "ec2:DescribeRegions"}
    return sorted(declared)


def policy_document() -> dict[str, Any]:
    """An IAM policy document (JSON-able) granting those read-only actions."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RempartReadOnlyAudit",
                "Effect": "Allow",
                "Action": actions(),
                "Resource": "*",
            }
        ],
    }
