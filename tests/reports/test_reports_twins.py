"""One risk, one line: twin rules failing on one resource are one line of the plan.

The committee reads risks; the store and the exports keep one finding per rule.
"""

from __future__ import annotations

import dataclasses

from audit.models import Severity, Status
from audit.reporting import RenderOptions
from reports import committee, html, twins

ROOT = "arn:aws:iam::123456789012:root"


def root_mfa(make_finding, rule_id: str, policy: str, severity=Severity.CRITICAL):
    return make_finding(
        rule_id=rule_id, policy=policy, title="The root user has MFA", status=Status.FAIL,
        severity=severity, resource_type="aws.account", resource_key=ROOT,
        target="aws://prod", message="root MFA off", evidence=False,
    )  # fmt: skip


def test_twins_on_one_resource_are_one_action_naming_both_rules(make_finding, report_data):
    pair = [root_mfa(make_finding, "AWS-IAM-102", "aws-baseline"),
            root_mfa(make_finding, "AWS-IAM-003", "cis-aws-foundations")]  # fmt: skip
    data = dataclasses.replace(report_data, findings=(*report_data.findings, *pair))
    view = committee.build(data, RenderOptions(), "fr")
    lines = [line for line in view.plan if "AWS-IAM-003" in line.rule_ids]
    assert [line.rule_ids for line in lines] == [("AWS-IAM-003", "AWS-IAM-102")]
    assert not any(line.action.rule_id == "AWS-IAM-102" for line in view.plan)
    alone = committee.build(
        dataclasses.replace(data, findings=(*data.findings[:-1],)), RenderOptions(), "fr"
    )
    assert view.open["critical"] == alone.open["critical"]  # counted once
    assert {s.rule_id for s in view.appendix} >= {"AWS-IAM-003", "AWS-IAM-102"}  # both sheets
    page = html.render(data, RenderOptions()).decode()
    assert page.count("The root user has MFA</strong>") <= 1


def test_twins_on_different_resources_and_passes_are_left_alone(make_finding) -> None:
    one = root_mfa(make_finding, "AWS-IAM-102", "aws-baseline")
    other = dataclasses.replace(root_mfa(make_finding, "AWS-IAM-003", "cis"), resource_key="x")
    passing = dataclasses.replace(one, rule_id="AWS-IAM-003", status=Status.PASS)
    declared = {
        "AWS-IAM-102": frozenset({"AWS-IAM-003"}),
        "AWS-IAM-003": frozenset({"AWS-IAM-102"}),
    }
    found = twins.group([one, other, passing], declared)
    assert found.findings == (one, other, passing)
    assert found.ids_of("AWS-IAM-102") == ("AWS-IAM-102",)


def test_a_top_risk_reads_as_a_sentence_naming_the_resource(make_finding, report_data):
    from audit.models import Resource

    sg = "arn:aws:ec2:eu-west-3:123456789012:security-group/sg-0ab1"
    facts = {"name": "holdout-admin-open", "group_id": "sg-0ab1", "region": "eu-west-3",
             "world_open_admin_ports": [22, 3389]}  # fmt: skip
    failing = make_finding(
        rule_id="AWS-EC2-101", policy="aws-baseline", status=Status.FAIL, resource_key=sg,
        severity=Severity.CRITICAL, resource_type="aws.ec2.security_group", target="aws://p",
    )  # fmt: skip
    resource = Resource(
        type="aws.ec2.security_group",
        key=sg,
        target="aws://p",
        system="Portail usagers",
        facts=facts,
    )
    data = dataclasses.replace(
        report_data,
        findings=(*report_data.findings, failing),
        resources=(*report_data.resources, resource),
    )
    page = html.render(data, RenderOptions()).decode()
    assert (
        "Le groupe de sécurité holdout-admin-open (sg-0ab1, eu-west-3) ouvre les ports "
        "d&#39;administration 22, 3389 à tout Internet" in page
    )
