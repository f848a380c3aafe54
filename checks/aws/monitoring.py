"""The CIS 4.x monitoring items: which CloudWatch Logs metric filter pattern covers which.

A pattern covers an item when, once blanks and quotes are removed, it names every event
the benchmark lists for that item. This is how the benchmark's own audit procedure reads
the pattern; a pattern written differently but equivalent may be missed (reported as not
monitored, with the pattern in the evidence).
"""

from __future__ import annotations

import re

ITEMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "unauthorized_api_calls": (
        "4.1",
        ("$.errorCode=*UnauthorizedOperation", "$.errorCode=AccessDenied*"),
    ),
    "console_signin_without_mfa": (
        "4.2",
        ("$.eventName=ConsoleLogin", "$.additionalEventData.MFAUsed!=Yes"),
    ),
    "root_account_usage": (
        "4.3",
        (
            "$.userIdentity.type=Root",
            "$.userIdentity.invokedByNOTEXISTS",
            "$.eventType!=AwsServiceEvent",
        ),
    ),
    "iam_policy_changes": (
        "4.4",
        (
            "DeleteGroupPolicy",
            "DeleteRolePolicy",
            "DeleteUserPolicy",
            "PutGroupPolicy",
            "PutRolePolicy",
            "PutUserPolicy",
            "CreatePolicy",
            "DeletePolicy",
            "CreatePolicyVersion",
            "DeletePolicyVersion",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "AttachUserPolicy",
            "DetachUserPolicy",
            "AttachGroupPolicy",
            "DetachGroupPolicy",
        ),
    ),
    "cloudtrail_changes": (
        "4.5",
        ("CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"),
    ),
    "console_auth_failures": (
        "4.6",
        ("$.eventName=ConsoleLogin", "$.errorMessage=Failedauthentication"),
    ),
    "cmk_disable_or_deletion": (
        "4.7",
        ("$.eventSource=kms.amazonaws.com", "DisableKey", "ScheduleKeyDeletion"),
    ),
    "s3_bucket_policy_changes": (
        "4.8",
        (
            "$.eventSource=s3.amazonaws.com",
            "PutBucketAcl",
            "PutBucketPolicy",
            "PutBucketCors",
            "PutBucketLifecycle",
            "PutBucketReplication",
            "DeleteBucketPolicy",
            "DeleteBucketCors",
            "DeleteBucketLifecycle",
            "DeleteBucketReplication",
        ),
    ),
    "config_changes": (
        "4.9",
        (
            "$.eventSource=config.amazonaws.com",
            "StopConfigurationRecorder",
            "DeleteDeliveryChannel",
            "PutDeliveryChannel",
            "PutConfigurationRecorder",
        ),
    ),
    "security_group_changes": (
        "4.10",
        (
            "AuthorizeSecurityGroupIngress",
            "AuthorizeSecurityGroupEgress",
            "RevokeSecurityGroupIngress",
            "RevokeSecurityGroupEgress",
            "CreateSecurityGroup",
            "DeleteSecurityGroup",
        ),
    ),
    "nacl_changes": (
        "4.11",
        (
            "CreateNetworkAcl",
            "CreateNetworkAclEntry",
            "DeleteNetworkAcl",
            "DeleteNetworkAclEntry",
            "ReplaceNetworkAclEntry",
            "ReplaceNetworkAclAssociation",
        ),
    ),
    "network_gateway_changes": (
        "4.12",
        (
            "CreateCustomerGateway",
            "DeleteCustomerGateway",
            "AttachInternetGateway",
            "CreateInternetGateway",
            "DeleteInternetGateway",
            "DetachInternetGateway",
        ),
    ),
    "route_table_changes": (
        "4.13",
        (
            "CreateRoute",
            "CreateRouteTable",
            "ReplaceRoute",
            "ReplaceRouteTableAssociation",
            "DeleteRouteTable",
            "DeleteRoute",
            "DisassociateRouteTable",
        ),
    ),
    "vpc_changes": (
        "4.14",
        (
            "CreateVpc",
            "DeleteVpc",
            "ModifyVpcAttribute",
            "AcceptVpcPeeringConnection",
            "CreateVpcPeeringConnection",
            "DeleteVpcPeeringConnection",
            "RejectVpcPeeringConnection",
        ),
    ),
    "organizations_changes": (
        "4.15",
        (
            "$.eventSource=organizations.amazonaws.com",
            "AcceptHandshake",
            "AttachPolicy",
            "CreateAccount",
            "CreateOrganizationalUnit",
            "CreatePolicy",
            "DeclineHandshake",
            "DeleteOrganization",
            "DeleteOrganizationalUnit",
            "DeletePolicy",
            "DetachPolicy",
            "DisablePolicyType",
            "EnablePolicyType",
            "InviteAccountToOrganization",
            "LeaveOrganization",
            "MoveAccount",
            "RemoveAccountFromOrganization",
            "UpdatePolicy",
            "UpdateOrganizationalUnit",
        ),
    ),
}
_BLANKS = re.compile(r"[\s\"']")


def normalise(pattern: str) -> str:
    """A filter pattern without blanks or quotes."""
    return _BLANKS.sub("", pattern)


def covered_items(pattern: str) -> set[str]:
    """The monitoring items a filter pattern covers."""
    text = normalise(pattern)
    return {
        name
        for name, (_, tokens) in ITEMS.items()
        if all(re.search(re.escape(t) + r"(?![A-Za-z])", text) for t in tokens)
    }
