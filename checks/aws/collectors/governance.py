"""Account-wide guard rails: Access Analyzer, Security Hub, AWS Config, the security
contact and the account-level S3 public access block.

Regional services are recorded per region; the account resource then carries the map and
the list of regions that lack the guard rail (``regions_without_*``), so a rule stays a
one-liner. A region whose call failed makes the whole fact unknown, never "enabled".
"""

from __future__ import annotations

from typing import Any

from checks.aws.collectors.base import Collector, Scan
from checks.clouddata import CallFailed

_NOT_SUBSCRIBED = ("InvalidAccessException", "ResourceNotFoundException")
_PAB_FIELDS = {
    "BlockPublicAcls": "block_public_acls",
    "IgnorePublicAcls": "ignore_public_acls",
    "BlockPublicPolicy": "block_public_policy",
    "RestrictPublicBuckets": "restrict_public_buckets",
}


def _regional(scan: Scan, fact: str, region: str, observe: Any) -> None:
    try:
        scan.harvest.regional(fact, region, observe())
    except CallFailed as failed:
        scan.harvest.regional(fact, region, failed.problem)


def access_analyzer(scan: Scan, region: str) -> None:
    """An active analyzer (account or organisation) in the region (CIS 1.20)."""

    def observe() -> bool:
        answer = scan.pages("accessanalyzer", region, "ListAnalyzers") or {}
        return any(a.get("status") == "ACTIVE" for a in answer.get("analyzers", []))

    _regional(scan, "access_analyzer", region, observe)


def security_hub(scan: Scan, region: str) -> None:
    """Security Hub subscribed in the region (CIS 4.16)."""

    def observe() -> bool:
        return scan.call("securityhub", region, "DescribeHub", missing=_NOT_SUBSCRIBED) is not None

    _regional(scan, "security_hub", region, observe)


def config_recorder(scan: Scan, region: str) -> None:
    """A recorder recording every supported resource type (CIS 3.3)."""

    def observe() -> dict[str, Any]:
        recorders = (scan.call("config", region, "DescribeConfigurationRecorders") or {}).get(
            "ConfigurationRecorders", []
        )
        statuses = (scan.call("config", region, "DescribeConfigurationRecorderStatus") or {}).get(
            "ConfigurationRecordersStatus", []
        )
        recording = {s.get("name") for s in statuses if s.get("recording")}
        group: dict[str, Any] = next(
            (r.get("recordingGroup", {}) for r in recorders if r.get("name") in recording), {}
        )
        return {
            "recorders": len(recorders),
            "is_recording": bool(recording),
            "records_all_supported": bool(group.get("allSupported")),
            "includes_global_resources": bool(group.get("includeGlobalResourceTypes")),
            "last_status": next((s.get("lastStatus") for s in statuses), None),
        }

    _regional(scan, "config_recorder", region, observe)


def security_contact(scan: Scan, region: str) -> None:
    """A security alternate contact is registered (CIS 1.2); its details are not kept."""
    try:
        answer = scan.call(
            "account",
            region,
            "GetAlternateContact",
            missing=("ResourceNotFoundException",),
            AlternateContactType="SECURITY",
        )
    except CallFailed as failed:
        scan.harvest.account_unknown(failed.problem, "has_security_contact")
        return
    scan.harvest.account_facts(has_security_contact=answer is not None)


def s3_account_block(scan: Scan, region: str) -> None:
    """The account-level S3 public access block (CIS 2.1.4)."""
    names = ("s3_public_access_block", "is_s3_public_access_blocked")
    try:
        answer = (
            scan.call(
                "s3control",
                region,
                "GetPublicAccessBlock",
                missing=("NoSuchPublicAccessBlockConfiguration",),
                AccountId=scan.account_id,
            )
            or {}
        )
    except CallFailed as failed:
        scan.harvest.account_unknown(failed.problem, *names)
        return
    config = answer.get("PublicAccessBlockConfiguration", {})
    block = {fact: bool(config.get(field)) for field, fact in _PAB_FIELDS.items()}
    scan.harvest.account_facts(
        s3_public_access_block=block, is_s3_public_access_blocked=all(block.values())
    )


COLLECTORS = (
    Collector(
        "access-analyzer",
        "accessanalyzer",
        (),
        (("accessanalyzer", "ListAnalyzers"),),
        access_analyzer,
        account_facts=("access_analyzer",),
    ),
    Collector(
        "security-hub",
        "securityhub",
        (),
        (("securityhub", "DescribeHub"),),
        security_hub,
        account_facts=("security_hub",),
    ),
    Collector(
        "config",
        "config",
        (),
        (
            ("config", "DescribeConfigurationRecorders"),
            ("config", "DescribeConfigurationRecorderStatus"),
        ),
        config_recorder,
        account_facts=("config_recorder",),
    ),
    Collector(
        "account-contacts",
        "account",
        (),
        (("account", "GetAlternateContact"),),
        security_contact,
        regional=False,
        account_facts=("has_security_contact",),
    ),
    Collector(
        "s3-account",
        "s3control",
        (),
        (("s3control", "GetPublicAccessBlock"),),
        s3_account_block,
        regional=False,
        account_facts=("s3_public_access_block", "is_s3_public_access_blocked"),
    ),
)
