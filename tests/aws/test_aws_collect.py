"""The aws family against a seeded moto lab: planted flaws are seen, clean twins pass."""

from __future__ import annotations

from typing import Any

from audit.models import Reason
from checks.aws import FAMILY
from checks.aws.collectors import ALL
from checks.aws.lab import Lab
from checks.aws.permissions import actions
from checks.aws.session import iam_action

from .conftest import by_type


def _one(observation: Any, type_: str, **match: Any) -> Any:
    found = [
        r
        for r in by_type(observation, type_).values()
        if all(r.facts.get(k) == v for k, v in match.items())
    ]
    assert len(found) == 1, (type_, match, found)
    return found[0]


def test_public_bucket_is_public_and_private_bucket_is_not(lab: Lab, lab_scan: Any) -> None:
    observation, _ = lab_scan
    public = _one(observation, "aws.s3.bucket", name=lab.planted.public_bucket)
    private = _one(observation, "aws.s3.bucket", name=lab.planted.private_bucket)
    assert public.key == f"arn:aws:s3:::{lab.planted.public_bucket}"
    assert public.facts["is_public"] is True
    assert public.facts["public_acl_grants"] == ["AllUsers:READ"]
    assert public.facts["policy_allows_public"] is True
    assert private.facts["is_public"] is False
    assert private.facts["is_public_access_blocked"] is True
    assert private.facts["denies_insecure_transport"] is True
    assert private.facts["is_versioning_enabled"] and private.facts["is_access_logging_enabled"]
    assert private.facts["encryption"]["source"] == "configured"


def test_missing_encryption_configuration_reads_as_aws_default_sse_s3(
    lab: Lab, lab_scan: Any
) -> None:
    observation, _ = lab_scan
    public = _one(observation, "aws.s3.bucket", name=lab.planted.public_bucket)
    assert public.facts["encryption"]["source"] == "aws-default"
    assert public.facts["encryption"]["algorithm"] == "AES256"
    assert "by default" in public.facts["encryption"]["note"]


def test_world_open_admin_group_and_clean_web_group(lab: Lab, lab_scan: Any) -> None:
    observation, _ = lab_scan
    open_admin = _one(observation, "aws.ec2.security_group", group_id=lab.planted.open_admin_group)
    web = _one(observation, "aws.ec2.security_group", group_id=lab.planted.web_group)
    assert open_admin.facts["world_open_admin_ports"] == [22, 3389]
    assert open_admin.facts["world_open_admin_ports_ipv4"] == [22]
    assert open_admin.facts["world_open_admin_ports_ipv6"] == [3389]
    assert open_admin.facts["is_attached"] is False  # judged although unattached
    assert web.facts["world_open_admin_ports"] == []
    assert web.facts["is_attached"] is True
    ssh = [e for e in web.facts["ingress"] if e["from_port"] == 22]
    assert ssh == [
        {
            "protocol": "tcp",
            "from_port": 22,
            "to_port": 22,
            "source": "10.0.0.0/8",
            "source_kind": "ipv4",
            "is_world_open": False,
            "is_all_ports": False,
            "ports_covered": [22],
        }
    ]


def test_volumes_instances_and_databases(lab: Lab, lab_scan: Any) -> None:
    observation, _ = lab_scan
    assert (
        _one(observation, "aws.ec2.volume", volume_id=lab.planted.unencrypted_volume).facts[
            "is_encrypted"
        ]
        is False
    )
    assert (
        _one(observation, "aws.ec2.volume", volume_id=lab.planted.encrypted_volume).facts[
            "is_encrypted"
        ]
        is True
    )
    assert (
        _one(observation, "aws.ec2.instance", instance_id=lab.planted.imdsv1_instance).facts[
            "is_imdsv2_required"
        ]
        is False
    )
    assert (
        _one(observation, "aws.ec2.instance", instance_id=lab.planted.imdsv2_instance).facts[
            "is_imdsv2_required"
        ]
        is True
    )
    exposed = _one(observation, "aws.rds.instance", db_instance_id="lab-db-exposed")
    assert exposed.facts["is_public"] is True and exposed.facts["is_encrypted"] is False
    private = _one(observation, "aws.rds.instance", db_instance_id="lab-db-private")
    assert private.facts["is_public"] is False and private.facts["is_encrypted"] is True
    encrypted = [
        r.facts["is_encrypted"] for r in by_type(observation, "aws.efs.file_system").values()
    ]
    assert sorted(encrypted) == [False, True]


def test_console_user_without_mfa_and_clean_user(lab: Lab, lab_scan: Any) -> None:
    observation, _ = lab_scan
    console = _one(observation, "aws.iam.user", name=lab.planted.console_user)
    clean = _one(observation, "aws.iam.user", name=lab.planted.clean_user)
    assert console.facts["has_console_access"] is True and console.facts["is_mfa_enabled"] is False
    assert console.facts["inline_policies"] == ["inline-admin"]
    assert (
        clean.facts["has_console_access"] is False and clean.facts["has_direct_policies"] is False
    )
    admin = _one(observation, "aws.iam.policy", name=lab.planted.admin_policy)
    assert admin.facts["grants_full_admin"] is True and admin.facts["is_attached"] is True
    assert (
        _one(observation, "aws.iam.policy", name=lab.planted.clean_policy).facts[
            "grants_full_admin"
        ]
        is False
    )


def test_kms_rotation(lab: Lab, lab_scan: Any) -> None:
    observation, _ = lab_scan
    keys = {r.facts["key_id"]: r.facts for r in by_type(observation, "aws.kms.key").values()}
    assert keys[lab.planted.extra["key_rotation"]]["is_rotation_enabled"] is True
    assert keys[lab.planted.extra["key_no_rotation"]]["is_rotation_enabled"] is False


def test_account_facts_and_moto_gaps_as_errors(lab_scan: Any) -> None:
    observation, _ = lab_scan
    (account,) = by_type(observation, "aws.account").values()
    facts = account.facts
    assert account.key == "arn:aws:iam::123456789012:root"
    assert facts["password_policy"]["exists"] is False
    assert facts["root_access_keys_present"] is False and facts["root_mfa_enabled"] is False
    assert facts["has_multi_region_trail"] is False and facts["trail_count"] == 0
    assert facts["regions_without_ebs_encryption_by_default"] == ["eu-west-3"]
    assert facts["regions_without_security_hub"] == ["eu-west-3"]
    assert facts["regions_without_config_recorder"] == ["eu-west-3"]
    assert facts["is_s3_public_access_blocked"] is False
    assert facts["has_security_contact"] is False
    assert facts["unmonitored_events"] == sorted(facts["monitoring"])
    # moto gaps: no <root_account> row; Access Analyzer answers HTTP 500
    assert account.unknown["root_last_used_days"].reason is Reason.NOT_IMPLEMENTED
    assert account.unknown["access_analyzer"].reason is Reason.UNREACHABLE
    assert "access-analyzer:ListAnalyzers" in account.unknown["access_analyzer"].message


def test_the_account_names_the_identity_used_and_the_cover_shows_it(
    lab: Lab, lab_scan: Any
) -> None:
    # Given a scan of the moto lab, and STS asked apart who the lab's credentials are
    from audit.models import ScanSummary
    from audit.reporting import RenderOptions, ReportData
    from checks.aws.lab import LAB_ACCESS_KEY, LAB_SECRET_KEY
    from reports import html

    observation, _ = lab_scan
    (account,) = by_type(observation, "aws.account").values()
    caller = lab.client("sts").get_caller_identity()["Arn"]
    # Then the account carries that ARN, a name and never a credential
    assert account.facts["caller_arn"] == caller
    assert caller.startswith("arn:aws:") and LAB_SECRET_KEY not in caller
    assert LAB_ACCESS_KEY not in caller.split(":")[-1].split("/")
    # and the committee report's cover names it beside the account and its regions
    scan = ScanSummary(1, "2026-12-01T08:00:00+00:00", None, "complete", ("aws-baseline@1",), {})
    data = ReportData(scan, (), (account,))
    page = html.render(data, RenderOptions(lang="fr")).decode()
    cover = page[: page.index('id="summary"')]
    assert f'<code class="arn">{caller}</code>' in cover
    assert "<code>123456789012</code>" in cover and "eu-west-3" in cover
    assert LAB_SECRET_KEY not in page


def test_only_declared_calls_are_made_and_permissions_cover_them(lab_scan: Any) -> None:
    _, api = lab_scan
    declared = {op for c in ALL for op in c.operations}
    declared |= {("sts", "GetCallerIdentity"), ("ec2", "DescribeRegions")}
    assert set(api.calls) <= declared
    granted = set(FAMILY.permissions()["Statement"][0]["Action"])  # type: ignore[misc]
    assert {iam_action(s, op) for s, op in api.calls} <= granted
    assert granted == set(actions())
    assert all(a.split(":")[1].startswith(("Get", "List", "Describe", "Generate")) for a in granted)


def test_every_collected_fact_is_documented(lab_scan: Any) -> None:
    observation, _ = lab_scan
    documented = {t.name: {f.name for f in t.facts} for t in FAMILY.resource_types}
    for resource in observation.resources:
        undocumented = set(resource.facts) - documented[resource.type]
        assert not undocumented, (resource.type, undocumented)


def test_list_calls_do_not_grow_with_resources(lab_scan: Any) -> None:
    _, api = lab_scan
    for service, op in api.calls:
        if service in ("ec2", "rds", "efs", "iam", "cloudtrail"):
            assert api.calls[(service, op)] <= 2, (service, op)


def test_a_forgotten_server_certificate_is_collected_as_expired(lab_scan: Any, lab: Any) -> None:
    # Given the lab's IAM store holds a TLS certificate long expired (CIS 1.19)
    observation, _ = lab_scan
    (cert,) = [r for r in observation.resources if r.type == "aws.iam.server_certificate"]
    # Then its facts say so, and its name is the one uploaded
    assert cert.facts["name"] == lab.planted.server_certificate
    assert cert.facts["is_expired"] is True
    assert cert.facts["days_left"] < 0
    assert str(cert.facts["expiration"]).startswith("20")


def test_the_called_services_list_is_what_the_collectors_declare() -> None:
    from checks.aws.collectors import ALL
    from checks.aws.services import CALLED_SERVICES

    declared = {"sts", "ec2"}.union(*(collector.all_services() for collector in ALL))
    assert declared == CALLED_SERVICES
