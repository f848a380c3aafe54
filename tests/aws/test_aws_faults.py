"""Errors are data: denied, throttled, unreachable, out of scope, no credentials, and a
provider that only offers S3. Real HTTP throughout (a fault proxy in front of moto)."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import Reason
from audit.plugins import CheckContext, Scope
from checks.aws import FAMILY
from checks.aws.lab import Lab

from .conftest import FaultProxy, by_type, context, parse, scan


@pytest.fixture(scope="module")
def faulty_scan(lab: Lab) -> Any:
    denied = {"GetBucketPolicy", "ListKeys", "GetAccountPasswordPolicy", "DescribeFlowLogs"}
    throttled = {"DescribeVolumes", "DescribeTrails"}
    with FaultProxy(lab.url, denied, throttled) as proxy:
        observation, _ = scan(f"aws://?endpoint={proxy.url}&regions=eu-west-3", context())
    return observation


def test_denied_bucket_policy_leaves_facts_unknown_naming_the_action(faulty_scan: Any) -> None:
    buckets = by_type(faulty_scan, "aws.s3.bucket").values()
    assert buckets
    for bucket in buckets:
        problem = bucket.unknown["policy_allows_public"]
        assert problem.reason is Reason.ACCESS_DENIED
        assert "needs s3:GetBucketPolicy" in problem.message
        assert "policy_allows_public" not in bucket.facts  # unknown, never false
        assert "denies_insecure_transport" in bucket.unknown
        assert "public_acl_grants" in bucket.facts  # the other attribute groups still observed


def test_public_verdict_stays_unknown_when_a_needed_fact_is(faulty_scan: Any, lab: Lab) -> None:
    (public,) = [
        b
        for b in by_type(faulty_scan, "aws.s3.bucket").values()
        if b.facts["name"] == lab.planted.public_bucket
    ]
    assert "is_public" not in public.facts
    assert public.unknown["is_public"].reason is Reason.ACCESS_DENIED


def test_denied_listing_is_a_problem_for_that_resource_type(faulty_scan: Any) -> None:
    (problem,) = [p for p in faulty_scan.problems if p.resource_type == "aws.kms.key"]
    assert problem.reason is Reason.ACCESS_DENIED and "kms:ListKeys" in problem.message
    assert not by_type(faulty_scan, "aws.kms.key")


def test_denied_account_fact(faulty_scan: Any) -> None:
    (account,) = by_type(faulty_scan, "aws.account").values()
    assert account.unknown["password_policy"].reason is Reason.ACCESS_DENIED
    assert "iam:GetAccountPasswordPolicy" in account.unknown["password_policy"].message
    assert account.facts["root_mfa_enabled"] is False  # the rest of the account is observed


def test_denied_flow_logs_make_vpc_flow_facts_unknown(faulty_scan: Any) -> None:
    for vpc in by_type(faulty_scan, "aws.ec2.vpc").values():
        assert vpc.unknown["has_flow_logs"].reason is Reason.ACCESS_DENIED


def test_throttling_after_retries_is_throttled(faulty_scan: Any) -> None:
    volumes = [p for p in faulty_scan.problems if p.resource_type == "aws.ec2.volume"]
    assert [p.reason for p in volumes] == [Reason.THROTTLED]
    trails = [p for p in faulty_scan.problems if p.resource_type == "aws.cloudtrail.trail"]
    assert [p.reason for p in trails] == [Reason.THROTTLED]
    (account,) = by_type(faulty_scan, "aws.account").values()
    assert account.unknown["has_multi_region_trail"].reason is Reason.THROTTLED
    assert account.unknown["monitoring"].reason is Reason.THROTTLED


def test_s3_only_provider_collects_buckets_and_marks_the_rest_not_applicable(aws_env: Any) -> None:
    with Lab() as store:
        store.client("s3").create_bucket(
            Bucket="archive-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
        )
        observation, api = scan("aws://?regions=eu-west-3", context(endpoints={"s3": store.url}))
    # moto keeps one in-process state for every server: the lab's buckets show up too
    assert "archive-bucket" in {r.facts["name"] for r in observation.resources}
    assert {r.type for r in observation.resources} == {"aws.s3.bucket"}
    assert {s for s, _ in api.calls} == {"s3"}
    assert {p.reason for p in observation.problems} == {Reason.NOT_IMPLEMENTED}
    types = {p.resource_type for p in observation.problems}
    assert {"aws.account", "aws.ec2.security_group", "aws.iam.user", "aws.rds.instance"} <= types
    assert "aws.s3.bucket" not in types
    assert all("does not offer" in p.message for p in observation.problems)


def test_account_outside_declared_scope_is_refused_before_collecting(lab: Lab) -> None:
    ctx = CheckContext(
        timeout=10,
        scope=Scope(blocks={"aws": {"accounts": ("999999999999",)}}),
        options={"aws": {"max_attempts": 2}},
    )
    observation, api = scan(lab.target(), ctx)
    assert observation.resources == ()
    (problem,) = observation.problems
    assert problem.reason is Reason.REFUSED and "123456789012" in problem.message
    assert set(api.calls) == {("sts", "GetCallerIdentity")}


def test_account_inside_declared_scope_is_collected(lab: Lab) -> None:
    ctx = CheckContext(
        timeout=10,
        scope=Scope(blocks={"aws": {"accounts": ("123456789012",)}}),
        options={"aws": {"max_attempts": 2}},
    )
    target = parse(lab.target())
    observation = FAMILY.collect(target, ctx)
    assert any(r.type == "aws.account" for r in observation.resources)


def test_unreachable_endpoint_is_a_target_problem(aws_env: Any) -> None:
    target = parse("aws://?endpoint=http://127.0.0.1:9&regions=eu-west-3")
    observation = FAMILY.collect(target, context(max_attempts=1))
    (problem,) = observation.problems
    assert problem.reason is Reason.UNREACHABLE and observation.resources == ()


def test_missing_credentials_are_access_denied(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    observation = FAMILY.collect(parse(lab.target()), context())
    (problem,) = observation.problems
    assert problem.reason is Reason.ACCESS_DENIED and "credentials" in problem.message


def test_unknown_profile_is_a_problem_not_an_exception(lab: Lab) -> None:
    observation = FAMILY.collect(parse(f"aws://no-such-profile?endpoint={lab.url}"), context())
    (problem,) = observation.problems
    assert problem.reason is Reason.BUG and "ProfileNotFound" in problem.message


def test_assume_role_goes_through_sts_with_external_id(lab: Lab) -> None:
    raw = (
        f"aws://?endpoint={lab.url}&regions=eu-west-3"
        "&role=arn:aws:iam::123456789012:role/audit&external_id=rempart-x1"
    )
    observation = FAMILY.collect(parse(raw), context())
    assert any(r.type == "aws.account" for r in observation.resources)


def test_invalid_inventory_options_are_a_problem(lab: Lab) -> None:
    observation = FAMILY.collect(parse(lab.target()), context(max_attempts="many"))
    (problem,) = observation.problems
    assert "max_attempts" in problem.message
