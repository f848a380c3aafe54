"""CIS AWS Foundations v3.0.0 as the benchmark reads it, on a moto lab: AWS-managed admin
policies (1.16), UDP administration ports (5.1-5.3), global resources in AWS Config (3.3),
never-used passwords counted from their last change (1.12), instance roles (1.18), an
external SIEM declared by the inventory (4.x), and unattached groups said to be so."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit.evaluate import BoundRule, evaluate_rule
from audit.models import Finding, Resource, Status
from audit.policy import load_policy
from audit.registry import load_families
from checks.aws.lab import REGION, Lab

from .conftest import FaultProxy, by_type, context, scan

POLICIES = Path(__file__).parents[2] / "policies"
ADMIN_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
OTHER_ACCOUNT = "210987654321"
WORLD4, WORLD6 = [{"CidrIp": "0.0.0.0/0"}], [{"CidrIpv6": "::/0"}]


def verdict(pack: str, rule_id: str, resource: Resource, **params: object) -> Finding:
    """One rule of a shipped pack on one observed resource, as a scan would judge it."""
    policy = load_policy(POLICIES / f"{pack}.yaml", load_families().fact_catalogue())
    (rule,) = [r for r in policy.rules if r.id == rule_id]
    return evaluate_rule(BoundRule(rule, {**policy.params, **params}), resource)


def observe(url: str, *services: str, proxy: str | None = None) -> Any:
    endpoints = dict.fromkeys(("sts", *services), proxy or url)
    observation, _ = scan(f"aws://?regions={REGION}", context(endpoints=endpoints))
    return observation


def one(observation: Any, type_: str, **match: Any) -> Resource:
    (found,) = [
        r
        for r in by_type(observation, type_).values()
        if all(r.facts.get(k) == v for k, v in match.items())
    ]
    return found  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def planted(aws_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """AdministratorAccess on a group, UDP-only admin rules, a TCP deny in front of a UDP
    allow in an ACL, SSH alone open to the world, and a console user created long ago."""
    with Lab() as lab:
        iam, ec2 = lab.client("iam"), lab.client("ec2")
        iam.create_user(UserName="cis-old-user")
        iam.create_login_profile(UserName="cis-old-user", Password="Cis-Passw0rd-Lab!")
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        udp = ec2.create_security_group(GroupName="cis-udp", Description="u", VpcId=vpc)
        ssh = ec2.create_security_group(GroupName="cis-ssh", Description="s", VpcId=vpc)
        ec2.authorize_security_group_ingress(
            GroupId=udp["GroupId"],
            IpPermissions=[
                {"IpProtocol": "udp", "FromPort": 3389, "ToPort": 3389, "IpRanges": WORLD4},
                {"IpProtocol": "udp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": WORLD6},
            ],
        )
        ec2.authorize_security_group_ingress(
            GroupId=ssh["GroupId"],
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": WORLD4}],
        )
        acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
        for number, protocol, action in ((100, "6", "deny"), (110, "17", "allow")):
            ec2.create_network_acl_entry(
                NetworkAclId=acl,
                RuleNumber=number,
                Protocol=protocol,
                RuleAction=action,
                Egress=False,
                CidrBlock="0.0.0.0/0",
                PortRange={"From": 22, "To": 22},
            )
        yield {"url": lab.url, "udp": udp["GroupId"], "ssh": ssh["GroupId"], "acl": acl}
        # moto keeps one state per process: leave the shared lab as found
        iam.delete_login_profile(UserName="cis-old-user")
        iam.delete_user(UserName="cis-old-user")
        ec2.delete_network_acl(NetworkAclId=acl)
        for group in (udp, ssh):
            ec2.delete_security_group(GroupId=group["GroupId"])
        ec2.delete_vpc(VpcId=vpc)


@pytest.fixture(scope="module")
def operators(aws_env: dict[str, str], monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    """Another account (reached by assuming a role, as moto allows) whose IAM knows the
    AWS-managed policies, with AdministratorAccess attached to a group; its target URI."""
    import boto3

    with Lab() as lab:
        role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/audit"
        monkeypatch_module.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        creds = lab.client("sts").assume_role(RoleArn=role, RoleSessionName="seed")["Credentials"]
        monkeypatch_module.delenv("MOTO_IAM_LOAD_MANAGED_POLICIES")
        iam = boto3.client(
            "iam",
            endpoint_url=lab.url,
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        iam.create_group(GroupName="cis-operators")
        iam.attach_group_policy(GroupName="cis-operators", PolicyArn=ADMIN_ACCESS)
        yield lab.url
        iam.detach_group_policy(GroupName="cis-operators", PolicyArn=ADMIN_ACCESS)
        iam.delete_group(GroupName="cis-operators")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_an_attached_aws_managed_admin_policy_fails_1_16(operators: str) -> None:
    endpoints = dict.fromkeys(("sts", "iam"), operators)
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/audit"
    observation, _ = scan(f"aws://?regions={REGION}&role={role}", context(endpoints=endpoints))
    admin = by_type(observation, "aws.iam.policy")[ADMIN_ACCESS]
    assert admin.facts["is_aws_managed"] is True
    assert admin.facts["grants_full_admin"] is True
    assert admin.facts["is_attached"] is True
    assert verdict("cis-aws-foundations", "AWS-IAM-014", admin).status is Status.FAIL


def test_udp_admin_ports_open_to_the_world_fail_5_2_and_5_3(planted: dict[str, str]) -> None:
    observation = observe(planted["url"], "ec2")
    group = one(observation, "aws.ec2.security_group", group_id=planted["udp"])
    assert group.facts["world_open_admin_ports_ipv4"] == [3389]
    assert group.facts["world_open_admin_ports_ipv6"] == [22]
    assert verdict("cis-aws-foundations", "AWS-EC2-003", group).status is Status.FAIL
    assert verdict("cis-aws-foundations", "AWS-EC2-004", group).status is Status.FAIL
    assert verdict("aws-baseline", "AWS-EC2-101", group).status is Status.FAIL


def test_a_udp_allow_behind_a_tcp_deny_fails_5_1(planted: dict[str, str]) -> None:
    observation = observe(planted["url"], "ec2")
    acl = one(observation, "aws.ec2.network_acl", network_acl_id=planted["acl"])
    assert acl.facts["world_open_admin_ports"] == [22]
    assert verdict("cis-aws-foundations", "AWS-EC2-002", acl).status is Status.FAIL


def test_ssh_open_to_the_world_is_not_a_database_finding(planted: dict[str, str]) -> None:
    observation = observe(planted["url"], "ec2")
    group = one(observation, "aws.ec2.security_group", group_id=planted["ssh"])
    assert group.facts["world_open_ports"] == []
    assert verdict("aws-baseline", "AWS-EC2-102", group).status is Status.PASS
    assert verdict("aws-baseline", "AWS-EC2-101", group).status is Status.FAIL


def test_an_unattached_group_is_judged_and_the_finding_says_it(planted: dict[str, str]) -> None:
    observation = observe(planted["url"], "ec2")
    group = one(observation, "aws.ec2.security_group", group_id=planted["ssh"])
    finding = verdict("cis-aws-foundations", "AWS-EC2-003", group)
    assert finding.status is Status.FAIL
    assert "is_attached: false" in finding.message
    assert finding.evidence["is_attached"] is False


def _old_creation(operation: str, body: bytes) -> bytes:
    """The credential report, with cis-old-user created in 2020 (its password set now)."""
    if operation != "GetCredentialReport":
        return body
    match = re.search(rb"<Content>([^<]+)</Content>", body)
    assert match is not None
    rows = base64.b64decode(match.group(1)).decode().splitlines()
    for i, row in enumerate(rows):
        cells = row.split(",")
        if cells[0] == "cis-old-user":
            cells[2] = "2020-01-01T00:00:00+00:00"  # user_creation_time
            rows[i] = ",".join(cells)
    content = base64.b64encode("\n".join(rows).encode() + b"\n")
    return body.replace(match.group(1), content)


def test_a_never_used_password_counts_from_its_last_change_1_12(planted: dict[str, str]) -> None:
    with FaultProxy(planted["url"], set(), set(), rewrite=_old_creation) as proxy:
        observation = observe(planted["url"], "iam", proxy=proxy.url)
    user = one(observation, "aws.iam.user", name="cis-old-user")
    assert user.facts["password_last_used"] is None
    assert user.facts["password_unused_days"] == 0
    assert verdict("cis-aws-foundations", "AWS-IAM-010", user).status is Status.PASS


def test_config_must_record_global_resources_somewhere_3_3(aws_env: dict[str, str]) -> None:
    with Lab() as lab:
        config, s3 = lab.client("config"), lab.client("s3")
        s3.create_bucket(
            Bucket="cis-config", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        recorder = {"name": "default", "roleARN": "arn:aws:iam::123456789012:role/config"}
        group = {"allSupported": True, "includeGlobalResourceTypes": False}
        config.put_configuration_recorder(
            ConfigurationRecorder={**recorder, "recordingGroup": group}
        )
        config.put_delivery_channel(
            DeliveryChannel={"name": "default", "s3BucketName": "cis-config"}
        )
        config.start_configuration_recorder(ConfigurationRecorderName="default")
        try:
            (without,) = by_type(observe(lab.url, "config"), "aws.account").values()
            assert without.facts["regions_without_config_recorder"] == []
            finding = verdict("cis-aws-foundations", "AWS-CONFIG-001", without)
            assert finding.status is Status.FAIL
            group["includeGlobalResourceTypes"] = True
            config.put_configuration_recorder(
                ConfigurationRecorder={**recorder, "recordingGroup": group}
            )
            (full,) = by_type(observe(lab.url, "config"), "aws.account").values()
            finding = verdict("cis-aws-foundations", "AWS-CONFIG-001", full)
            assert finding.status is Status.PASS
        finally:
            config.stop_configuration_recorder(ConfigurationRecorderName="default")
            config.delete_delivery_channel(DeliveryChannelName="default")
            config.delete_configuration_recorder(ConfigurationRecorderName="default")
            s3.delete_bucket(Bucket="cis-config")


def test_instances_without_a_role_fail_1_18(lab_scan: Any) -> None:
    observation, _ = lab_scan
    instances = list(by_type(observation, "aws.ec2.instance").values())
    assert instances
    for instance in instances:
        assert verdict("cis-aws-foundations", "AWS-EC2-007", instance).status is Status.FAIL


def test_an_external_siem_declared_by_the_inventory_meets_4_x(lab_scan: Any) -> None:
    observation, _ = lab_scan
    (account,) = by_type(observation, "aws.account").values()
    bare = verdict("cis-aws-foundations", "AWS-CLOUDWATCH-015", account)
    assert bare.status is Status.FAIL
    declared = "Splunk SOC, ticket 1234"
    for number in range(1, 16):
        rule = f"AWS-CLOUDWATCH-{number:03d}"
        finding = verdict("cis-aws-foundations", rule, account, external_monitoring=declared)
        assert finding.status is Status.PASS, rule
        assert finding.message == (
            f"monitored outside CloudWatch, as declared by the inventory: {declared}"
        )
        assert finding.evidence["params.external_monitoring"] == declared
    security_hub = verdict(
        "cis-aws-foundations", "AWS-SECURITYHUB-001", account, external_monitoring=declared
    )
    assert security_hub.status is Status.FAIL  # 4.16 is not a monitoring filter
