"""Targets, policy documents, network rules and monitoring patterns: the parsers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.errors import TargetError
from audit.models import Reason
from checks.aws import monitoring, netrules, policydoc
from checks.aws.errors import problem_from

from .conftest import parse


@pytest.mark.parametrize(
    ("raw", "uri", "host"),
    [
        ("aws://", "aws://", "default"),
        ("aws://prod-audit", "aws://prod-audit", "prod-audit"),
        (
            "aws://?regions=eu-west-3,eu-west-1,eu-west-3",
            "aws://?regions=eu-west-3,eu-west-1",
            "default",
        ),
        (
            "aws://p?endpoint=HTTPS://S3.Example.GOUV.fr:8443/&regions=eu-west-3",
            "aws://p?endpoint=https://s3.example.gouv.fr:8443&regions=eu-west-3",
            "p",
        ),
        (
            "aws://?role=arn:aws:iam::123456789012:role/audit&external_id=abc-123",
            "aws://?external_id=abc-123&role=arn:aws:iam::123456789012:role/audit",
            "default",
        ),
        ("aws://?endpoint=http://[::1]:4566", "aws://?endpoint=http://[::1]:4566", "default"),
    ],
)
def test_valid_targets_are_canonical(raw: str, uri: str, host: str) -> None:
    target = parse(raw)
    assert (target.uri, target.host, target.scheme) == (uri, host, "aws")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("aws://?endpoint=http://key:secret@127.0.0.1:4566", "credentials"),
        ("aws://?endpoint=ftp://127.0.0.1", "http"),
        ("aws://?endpoint=http://127.0.0.1:99999", "port"),
        ("aws://?endpoint=http://bad_host!:80", "valid host"),
        ("aws://?endpoint=http://127.0.0.1/path", "scheme, a host and a port"),
        ("aws://?endpoint=http://127.0.0.1?x=1", "a host and a port only"),
        ("aws://?regions=Europe", "region name"),
        ("aws://?regions=", "empty"),
        ("aws://?role=admin", "role ARN"),
        ("aws://?external_id=x", "external_id"),
        ("aws://prod:443", "profile name"),
        ("aws://-", "not a valid profile name"),
        ("aws://--debug", "not a valid profile name"),
        ("aws://user:pw@prod", "credentials"),
        ("aws://prod/path", "path"),
        ("aws://?zone=1", "unknown parameter"),
    ],
)
def test_invalid_targets_are_refused(raw: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse(raw)


def test_templated_endpoint_keeps_its_region_placeholder() -> None:
    from checks.aws.targets import validate_endpoint

    templated = "https://fcu.{region}.outscale.com"
    assert validate_endpoint(templated) == templated


def _admin(action: object, resource: object = "*") -> dict[str, object]:
    return {"Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (_admin("*"), True),
        (_admin(["s3:GetObject", "*:*"]), True),
        (_admin("*", "arn:aws:s3:::b/*"), False),
        (_admin("s3:*"), False),
        ('{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}', True),
        ({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}, False),
        ("not json", False),
    ],
)
def test_full_admin_detection(document: object, expected: bool) -> None:
    assert policydoc.grants_full_admin(document) is expected


def test_public_policy_needs_an_unnarrowed_any_principal() -> None:
    open_ = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:GetObject"}]
    }
    narrowed = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}},
            }
        ]
    }
    assert policydoc.allows_public(open_) and not policydoc.allows_public(narrowed)


def test_tls_only_policy() -> None:
    deny = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Condition": {"Bool": {"aws:SecureTransport": ["false"]}},
            }
        ]
    }
    assert policydoc.denies_insecure_transport(deny)
    deny["Statement"][0]["Action"] = "s3:GetObject"
    assert not policydoc.denies_insecure_transport(deny)


def test_security_group_rules_are_normalised() -> None:
    entries = netrules.sg_entries(
        [
            {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
            {
                "IpProtocol": "tcp",
                "FromPort": 3300,
                "ToPort": 3400,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                "UserIdGroupPairs": [{"GroupId": "sg-1"}],
            },
            {
                "IpProtocol": "icmp",
                "FromPort": 8,
                "ToPort": -1,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            },
        ]
    )
    assert [e["source_kind"] for e in entries] == ["ipv6", "ipv4", "security_group", "ipv4"]
    assert entries[0]["is_all_ports"] and 22 in entries[0]["ports_covered"]
    assert entries[1]["ports_covered"] == [3306, 3389]
    assert entries[3]["from_port"] is None and entries[3]["ports_covered"] == []
    assert netrules.world_open_ports(entries, netrules.ADMIN_PORTS) == [22, 3389]
    assert netrules.world_open_ports(entries, netrules.ADMIN_PORTS, "ipv4") == [3389]


def test_network_acl_first_match_wins() -> None:
    raw = [
        {
            "RuleNumber": 100,
            "Protocol": "6",
            "RuleAction": "deny",
            "Egress": False,
            "CidrBlock": "0.0.0.0/0",
            "PortRange": {"From": 22, "To": 22},
        },
        {
            "RuleNumber": 200,
            "Protocol": "-1",
            "RuleAction": "allow",
            "Egress": False,
            "CidrBlock": "0.0.0.0/0",
        },
        {
            "RuleNumber": 100,
            "Protocol": "-1",
            "RuleAction": "allow",
            "Egress": True,
            "CidrBlock": "0.0.0.0/0",
        },
    ]
    entries = netrules.nacl_entries(raw, egress=False)
    assert [e["rule_number"] for e in entries] == [100, 200]
    # TCP 22 stops at the deny; UDP 22 does not, and the allow-all behind it admits it
    assert netrules.nacl_world_open(entries, netrules.ADMIN_PORTS) == [22, 3389]
    raw[0]["Protocol"] = "-1"  # a deny of every protocol covers every port: nothing passes
    entries = netrules.nacl_entries(raw, egress=False)
    assert netrules.nacl_world_open(entries, netrules.ADMIN_PORTS) == []


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_ports_covered_are_exactly_the_watched_ports_in_range(low: int, high: int) -> None:
    low, high = min(low, high), max(low, high)
    entry = netrules.entry("tcp", low, high, "0.0.0.0/0", "ipv4")
    assert entry["ports_covered"] == [p for p in netrules.WATCHED_PORTS if low <= p <= high]
    assert entry["is_all_ports"] == (low == 0 and high == 65535)


def test_cis_metric_filter_patterns_are_recognised() -> None:
    pattern = (
        '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") '
        '&& ($.sourceIPAddress!="delivery.logs.amazonaws.com") }'
    )
    assert monitoring.covered_items(pattern) == {"unauthorized_api_calls"}
    root = (
        '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS '
        '&& $.eventType != "AwsServiceEvent" }'
    )
    assert monitoring.covered_items(root) == {"root_account_usage"}
    assert monitoring.covered_items("{ ($.eventName = CreateTrail) }") == set()


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("AccessDenied", 403, Reason.ACCESS_DENIED),
        ("UnauthorizedOperation", 403, Reason.ACCESS_DENIED),
        ("ThrottlingException", 400, Reason.THROTTLED),
        ("RequestLimitExceeded", 503, Reason.THROTTLED),
        ("NotImplemented", 501, Reason.NOT_IMPLEMENTED),
        ("InternalError", 500, Reason.UNREACHABLE),
        ("ValidationError", 400, Reason.BUG),
    ],
)
def test_client_errors_map_to_reasons(code: str, status: int, reason: Reason) -> None:
    from botocore.exceptions import ClientError

    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    exc = ClientError(response, "GetBucketPolicy")
    problem = problem_from(exc, "s3:GetBucketPolicy")
    assert problem.reason is reason and "s3:GetBucketPolicy" in problem.message
