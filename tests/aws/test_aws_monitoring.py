"""CIS 4.x monitoring against moto: only a multi-region trail logging all management events
counts, and only an alarm whose SNS topic has a confirmed subscriber monitors anything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from audit.models import Observation, Reason
from checks.aws import monitoring
from checks.aws.collectors.cloudtrail import has_confirmed_subscription
from checks.aws.lab import ACCOUNT_ID, REGION, Lab

from .conftest import FaultProxy, context, scan

SERVICES = ("sts", "cloudtrail", "logs", "cloudwatch", "sns")
PATTERNS = {
    "4.1": '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }',
    "4.3": '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS '
    '&& $.eventType != "AwsServiceEvent" }',
    "4.4": "{ ($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || "
    "($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || "
    "($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || "
    "($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || "
    "($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || "
    "($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || "
    "($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || "
    "($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy) }",
    "4.5": "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || "
    "($.eventName = DeleteTrail) || ($.eventName = StartLogging) || "
    "($.eventName = StopLogging) }",
    "4.15": "{ ($.eventSource = organizations.amazonaws.com) && "
    + " || ".join(
        f'($.eventName = "{name}")'
        for name in [
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
        ]
    )
    + " }",
}


def _group_arn(name: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"


@pytest.fixture(scope="module")
def watched(aws_env: dict[str, str]) -> Iterator[Lab]:
    """A qualifying trail whose filters alarm to a subscribed topic, an unsubscribed topic
    and no action at all; and a single-region trail whose alarm would otherwise count."""
    with Lab() as lab:
        s3, ct, logs = lab.client("s3"), lab.client("cloudtrail"), lab.client("logs")
        cw, sns = lab.client("cloudwatch"), lab.client("sns")
        s3.create_bucket(
            Bucket="watch-trail-logs", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        oncall = sns.create_topic(Name="watch-oncall")["TopicArn"]
        nobody = sns.create_topic(Name="watch-nobody")["TopicArn"]
        sns.subscribe(TopicArn=oncall, Protocol="email", Endpoint="soc@example.gouv.fr")
        role = f"arn:aws:iam::{ACCOUNT_ID}:role/trail-to-logs"
        for trail, multi in (("watch-main", True), ("watch-single", False)):
            logs.create_log_group(logGroupName=trail)
            ct.create_trail(
                Name=trail,
                S3BucketName="watch-trail-logs",
                IsMultiRegionTrail=multi,
                CloudWatchLogsLogGroupArn=_group_arn(trail),
                CloudWatchLogsRoleArn=role,
            )
            ct.put_event_selectors(  # moto answers no selector at all for a new trail
                TrailName=trail,
                EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}],
            )
            ct.start_logging(Name=trail)
        alarms = {"4.1": [oncall], "4.3": [nobody], "4.4": [], "4.5": [oncall], "4.15": [oncall]}
        for item, actions in alarms.items():
            group = "watch-single" if item == "4.5" else "watch-main"
            metric = f"cis-{item}"
            logs.put_metric_filter(
                logGroupName=group,
                filterName=metric,
                filterPattern=PATTERNS[item],
                metricTransformations=[
                    {"metricName": metric, "metricNamespace": "CISBenchmark", "metricValue": "1"}
                ],
            )
            cw.put_metric_alarm(
                AlarmName=metric,
                MetricName=metric,
                Namespace="CISBenchmark",
                Statistic="Sum",
                Period=300,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
                AlarmActions=actions,
            )
        yield lab
        # moto keeps one state per process: leave the shared lab as found
        cw.delete_alarms(AlarmNames=[f"cis-{item}" for item in alarms])
        for trail in ("watch-main", "watch-single"):
            ct.delete_trail(Name=trail)
            logs.delete_log_group(logGroupName=trail)
        for topic in (oncall, nobody):
            sns.delete_topic(TopicArn=topic)
        s3.delete_bucket(Bucket="watch-trail-logs")


def _account(url: str) -> Any:
    observation: Observation
    observation, _ = scan(
        f"aws://?regions={REGION}", context(endpoints=dict.fromkeys(SERVICES, url))
    )
    (account,) = [r for r in observation.resources if r.type == "aws.account"]
    return account


def test_only_a_notifying_alarm_on_a_qualifying_trail_monitors(watched: Lab) -> None:
    account = _account(watched.url)
    status = account.facts["monitoring"]
    assert status["unauthorized_api_calls"] is True  # subscribed topic
    assert status["root_account_usage"] is False  # alarm to a topic nobody receives
    assert status["iam_policy_changes"] is False  # alarm without action
    assert status["cloudtrail_changes"] is False  # single-region trail does not count
    assert status["organizations_changes"] is True  # the benchmark's 18 events
    assert set(account.facts["unmonitored_events"]) == set(monitoring.ITEMS) - {
        "unauthorized_api_calls",
        "organizations_changes",
    }
    seen = {f["metric"]: f["alarmed"] for f in account.facts["metric_filters"]}
    assert seen == {"cis-4.1": True, "cis-4.3": False, "cis-4.4": False, "cis-4.15": True}


def test_organizations_changes_need_all_eighteen_events_of_4_15() -> None:
    assert monitoring.covered_items(PATTERNS["4.15"]) == {"organizations_changes"}
    six = (
        "{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = CreateAccount) || "
        "($.eventName = InviteAccountToOrganization) || ($.eventName = LeaveOrganization) || "
        "($.eventName = RemoveAccountFromOrganization) || ($.eventName = UpdatePolicy) || "
        "($.eventName = DeletePolicy)) }"
    )
    assert monitoring.covered_items(six) == set()


def test_a_denied_subscriber_listing_leaves_monitoring_unknown(watched: Lab) -> None:
    with FaultProxy(watched.url, {"ListSubscriptionsByTopic"}, set()) as proxy:
        account = _account(proxy.url)
    problem = account.unknown["monitoring"]
    assert problem.reason is Reason.ACCESS_DENIED
    assert "sns:ListSubscriptionsByTopic" in problem.message
    assert "monitoring" not in account.facts


def test_a_trail_of_unknown_status_that_alone_would_cover_leaves_it_unknown(
    watched: Lab,
) -> None:
    with FaultProxy(watched.url, {"GetTrailStatus"}, set()) as proxy:
        account = _account(proxy.url)
    assert account.unknown["monitoring"].reason is Reason.ACCESS_DENIED
    assert "cloudtrail:GetTrailStatus" in account.unknown["monitoring"].message


@pytest.mark.parametrize(
    ("arns", "expected"),
    [
        ([], False),
        (["PendingConfirmation"], False),
        (["Deleted", "PendingConfirmation"], False),
        (["PendingConfirmation", "arn:aws:sns:eu-west-3:123456789012:t:1f2e"], True),
    ],
)
def test_only_confirmed_subscriptions_count(arns: list[str], expected: bool) -> None:
    answer = {"Subscriptions": [{"SubscriptionArn": a} for a in arns]}
    assert has_confirmed_subscription(answer) is expected
    assert has_confirmed_subscription(None) is False


def test_a_log_group_of_another_account_leaves_uncovered_items_unknown(watched: Lab) -> None:
    ct = watched.client("cloudtrail")
    ct.create_trail(
        Name="watch-organisation",
        S3BucketName="watch-trail-logs",
        IsMultiRegionTrail=True,
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:{REGION}:210987654321:log-group:org:*",
        CloudWatchLogsRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/trail-to-logs",
    )
    try:
        ct.put_event_selectors(
            TrailName="watch-organisation",
            EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}],
        )
        ct.start_logging(Name="watch-organisation")
        account = _account(watched.url)
    finally:
        ct.delete_trail(Name="watch-organisation")
    problem = account.unknown["monitoring"]
    assert problem.reason is Reason.NOT_FOUND and "210987654321" in problem.message
