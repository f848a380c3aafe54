"""IAM: users, managed policies, server certificates and the account's root.

One paginated GetAccountAuthorizationDetails returns every user, group, role and local
policy with its documents, and one credential report gives console access, MFA and the
age and use of every access key: no call per user. AWS-managed policies attached in the
account (``AdministratorAccess`` on a group, say) are judged too, as the CIS 1.16 audit
reads them: one listing of those attached, then the default version of each.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from audit.models import Problem, Reason
from checks.aws import policydoc
from checks.aws.collectors.base import Collector, Scan
from checks.clouddata import CallFailed, Draft

USER, POLICY, CERT = "aws.iam.user", "aws.iam.policy", "aws.iam.server_certificate"
SUPPORT_POLICY = "AWSSupportAccess"
CLOUDSHELL_POLICY = "AWSCloudShellFullAccess"
ROOT_ROW = "<root_account>"
_PASSWORD_FIELDS = {
    "MinimumPasswordLength": "min_length",
    "PasswordReusePrevention": "reuse_prevention",
    "MaxPasswordAge": "max_age_days",
    "RequireUppercaseCharacters": "require_uppercase",
    "RequireLowercaseCharacters": "require_lowercase",
    "RequireNumbers": "require_numbers",
    "RequireSymbols": "require_symbols",
    "AllowUsersToChangePassword": "allow_users_to_change",
    "HardExpiry": "hard_expiry",
}
USER_REPORT_FACTS = (
    "has_console_access",
    "is_mfa_enabled",
    "password_last_used",
    "password_unused_days",
    "access_keys",
    "active_access_key_count",
    "oldest_active_key_age_days",
    "active_keys_never_used",
)


def run(scan: Scan, region: str) -> None:
    """Users and policies, the root account, then server certificates."""
    _password_policy(scan, region)
    root_mfa = _account_summary(scan, region)
    _root_hardware_mfa(scan, region, root_mfa)
    report = _credential_report(scan, region)
    try:
        _authorization_details(scan, region, report)
    except CallFailed as failed:
        for type_ in (USER, POLICY):
            scan.harvest.problem(_on_type(failed.problem, type_))
        scan.harvest.account_unknown(
            failed.problem, "has_support_role", "support_roles", "cloudshell_full_access_entities"
        )
    try:
        _aws_managed_policies(scan, region)
    except CallFailed as failed:
        scan.harvest.problem(_on_type(failed.problem, POLICY))
    try:
        _server_certificates(scan, region)
    except CallFailed as failed:
        scan.harvest.problem(_on_type(failed.problem, CERT))


def _on_type(problem: Problem, type_: str) -> Problem:
    return Problem(problem.reason, problem.message, resource_type=type_)


def _password_policy(scan: Scan, region: str) -> None:
    try:
        answer = scan.call("iam", region, "GetAccountPasswordPolicy", missing=("NoSuchEntity",))
    except CallFailed as failed:
        scan.harvest.account_unknown(failed.problem, "password_policy")
        return
    policy = (answer or {}).get("PasswordPolicy", {})
    facts: dict[str, Any] = {"exists": answer is not None}
    facts.update({fact: policy.get(field) for field, fact in _PASSWORD_FIELDS.items()})
    scan.harvest.account_facts(password_policy=facts)


def _account_summary(scan: Scan, region: str) -> bool | None:
    """Root access keys and root MFA, from the account summary (no root row needed)."""
    try:
        summary = (scan.call("iam", region, "GetAccountSummary") or {}).get("SummaryMap", {})
    except CallFailed as failed:
        scan.harvest.account_unknown(failed.problem, "root_access_keys_present", "root_mfa_enabled")
        return None
    mfa = bool(summary.get("AccountMFAEnabled"))
    scan.harvest.account_facts(
        root_access_keys_present=bool(summary.get("AccountAccessKeysPresent")),
        root_mfa_enabled=mfa,
    )
    return mfa


def _root_hardware_mfa(scan: Scan, region: str, root_mfa: bool | None) -> None:
    """Root has MFA and no *virtual* device is assigned to it: the device is hardware."""
    try:
        answer = (
            scan.pages("iam", region, "ListVirtualMFADevices", AssignmentStatus="Assigned") or {}
        )
    except CallFailed as failed:
        scan.harvest.account_unknown(failed.problem, "root_hardware_mfa")
        return
    if root_mfa is None:
        return
    virtual_root = any(
        str(d.get("SerialNumber", "")).endswith(":mfa/root-account-mfa-device")
        or str(d.get("User", {}).get("Arn", "")).endswith(":root")
        for d in answer.get("VirtualMFADevices", [])
    )
    scan.harvest.account_facts(root_hardware_mfa=root_mfa and not virtual_root)


def _credential_report(scan: Scan, region: str) -> dict[str, dict[str, str]] | Problem:
    """The credential report by ARN (root under ``<root_account>``), or why it is missing."""
    try:
        scan.call("iam", region, "GenerateCredentialReport")
        content = _wait_report(scan, region)
    except CallFailed as failed:
        scan.harvest.account_unknown(failed.problem, "root_last_used_days")
        return failed.problem
    rows = list(csv.DictReader(io.StringIO(content)))
    by_arn = {}
    for row in rows:
        clean = {k.lower(): v for k, v in row.items() if k}
        key = ROOT_ROW if clean.get("user") == ROOT_ROW else clean.get("arn", "")
        by_arn[key] = clean
    _root_last_used(scan, by_arn.get(ROOT_ROW))
    return by_arn


def _wait_report(scan: Scan, region: str) -> str:
    """The report is generated asynchronously: poll until ready, within the timeout.

    Polls start short and double (a fresh report usually takes a few seconds; one
    generated within the last four hours is returned at once)."""
    deadline = time.monotonic() + scan.api.timeout
    pause = 0.25
    while True:
        answer = scan.call(
            "iam", region, "GetCredentialReport", missing=("ReportInProgress", "ReportNotPresent")
        )
        if answer is not None:
            return bytes(answer.get("Content", b"")).decode("utf-8", "replace")
        if time.monotonic() > deadline:
            raise CallFailed(
                Problem(Reason.TIMEOUT, "iam:GetCredentialReport: report not ready in time")
            )
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def _root_last_used(scan: Scan, row: dict[str, str] | None) -> None:
    if row is None:
        problem = Problem(
            Reason.NOT_IMPLEMENTED,
            "the credential report has no <root_account> row: root use is unknown",
        )
        scan.harvest.account_unknown(problem, "root_last_used_days")
        return
    used = [
        d
        for d in (
            _date(row.get("password_last_used")),
            _date(row.get("access_key_1_last_used_date")),
            _date(row.get("access_key_2_last_used_date")),
        )
        if d
    ]
    scan.harvest.account_facts(root_last_used_days=_days_since(max(used)) if used else None)


def _date(value: str | None) -> datetime | None:
    """Credential-report dates; ``N/A``, ``no_information`` and friends are None."""
    if not value or not value[:1].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _days_since(when: datetime | None) -> int | None:
    return None if when is None else max(0, (datetime.now(UTC) - when).days)


def _authorization_details(
    scan: Scan, region: str, report: dict[str, dict[str, str]] | Problem
) -> None:
    details = (
        scan.pages(
            "iam",
            region,
            "GetAccountAuthorizationDetails",
            Filter=["User", "Role", "Group", "LocalManagedPolicy"],
        )
        or {}
    )
    for user in details.get("UserDetailList", []):
        _user(scan, user, report)
    for policy in details.get("Policies", []):
        _policy(scan, policy)
    _managed_policy_holders(scan, details)


def _user(scan: Scan, user: dict[str, Any], report: dict[str, dict[str, str]] | Problem) -> None:
    facts = {
        "name": user.get("UserName"),
        "path": user.get("Path"),
        "groups": sorted(user.get("GroupList", [])),
        "inline_policies": sorted(p.get("PolicyName", "") for p in user.get("UserPolicyList", [])),
        "attached_policies": sorted(
            p.get("PolicyName", "") for p in user.get("AttachedManagedPolicies", [])
        ),
    }
    facts["has_direct_policies"] = bool(facts["inline_policies"] or facts["attached_policies"])
    draft = scan.harvest.add(Draft(USER, str(user["Arn"]), facts))
    if isinstance(report, Problem):
        draft.mark_unknown(report, *USER_REPORT_FACTS)
        return
    row = report.get(str(user["Arn"]))
    if row is None:
        missing = Problem(
            Reason.NOT_FOUND, "user absent from the credential report (created since?)"
        )
        draft.mark_unknown(missing, *USER_REPORT_FACTS)
        return
    draft.facts.update(user_report_facts(row))


def user_report_facts(row: dict[str, str]) -> dict[str, Any]:
    """Console access, MFA and access keys of one credential-report row."""
    has_password = row.get("password_enabled") == "true"
    created = _date(row.get("user_creation_time"))
    last_login = _date(row.get("password_last_used"))
    # CIS 1.12's audit: a password never used counts from its last change, not the user's
    # creation (a password set last week on a user created years ago is not stale).
    changed = _date(row.get("password_last_changed")) or created
    keys = [_key(row, slot, created) for slot in (1, 2)]
    active = [k for k in keys if k["is_active"]]
    return {
        "has_console_access": has_password,
        "is_mfa_enabled": row.get("mfa_active") == "true",
        "password_last_used": last_login.isoformat() if last_login else None,
        "password_unused_days": _days_since(last_login or changed) if has_password else None,
        "access_keys": active,
        "active_access_key_count": len(active),
        "oldest_active_key_age_days": max(
            (k["age_days"] for k in active if k["age_days"] is not None), default=None
        ),
        "active_keys_never_used": sum(1 for k in active if k["last_used"] is None),
    }


def _key(row: dict[str, str], slot: int, created: datetime | None) -> dict[str, Any]:
    """One access key slot; the key id itself is never recorded."""
    rotated = _date(row.get(f"access_key_{slot}_last_rotated"))
    used = _date(row.get(f"access_key_{slot}_last_used_date"))
    return {
        "slot": slot,
        "is_active": row.get(f"access_key_{slot}_active") == "true",
        "last_rotated": rotated.isoformat() if rotated else None,
        "age_days": _days_since(rotated or created),
        "last_used": used.isoformat() if used else None,
        "unused_days": _days_since(used or rotated or created),
    }


def _policy(scan: Scan, policy: dict[str, Any]) -> None:
    default: dict[str, Any] = next(
        (v for v in policy.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), {}
    )
    facts = {
        **_policy_facts(policy, aws_managed=False),
        "grants_full_admin": policydoc.grants_full_admin(_document(default.get("Document"))),
    }
    scan.harvest.add(Draft(POLICY, str(policy["Arn"]), facts))


def _policy_facts(policy: dict[str, Any], aws_managed: bool) -> dict[str, Any]:
    count = int(policy.get("AttachmentCount", 0))
    return {
        "name": policy.get("PolicyName") or str(policy["Arn"]).rsplit("/", 1)[-1],
        "is_aws_managed": aws_managed,
        "is_attached": count > 0,
        "attachment_count": count,
    }


def _document(raw: Any) -> Any:
    """A policy document as the API gives it (a dict, or URL-encoded JSON text)."""
    return unquote(raw) if isinstance(raw, str) else (raw or {})


def _aws_managed_policies(scan: Scan, region: str) -> None:
    """AWS-managed policies attached to some user, group or role, with their documents.

    The calls grow with the distinct AWS-managed policies in use (a few dozen at most in
    practice), never with users or roles.
    """
    answer = scan.pages("iam", region, "ListPolicies", Scope="AWS", OnlyAttached=True) or {}
    scan.fan_out(lambda policy: _aws_managed(scan, region, policy), answer.get("Policies", []))


def _aws_managed(scan: Scan, region: str, policy: dict[str, Any]) -> None:
    arn = str(policy["Arn"])
    draft = scan.harvest.add(Draft(POLICY, arn, _policy_facts(policy, aws_managed=True)))
    with draft.observing("grants_full_admin"):
        version = str(policy.get("DefaultVersionId") or "v1")
        answer = scan.call("iam", region, "GetPolicyVersion", PolicyArn=arn, VersionId=version)
        document = _document((answer or {}).get("PolicyVersion", {}).get("Document"))
        draft.facts["grants_full_admin"] = policydoc.grants_full_admin(document)


def _managed_policy_holders(scan: Scan, details: dict[str, Any]) -> None:
    """Who holds the support policy (CIS 1.17) and full CloudShell access (CIS 1.22)."""
    holders: dict[str, list[str]] = {SUPPORT_POLICY: [], CLOUDSHELL_POLICY: []}
    for kind, list_key, name_key in (
        ("role", "RoleDetailList", "RoleName"),
        ("user", "UserDetailList", "UserName"),
        ("group", "GroupDetailList", "GroupName"),
    ):
        for entity in details.get(list_key, []):
            for attached in entity.get("AttachedManagedPolicies", []):
                if attached.get("PolicyName") in holders:
                    holders[attached["PolicyName"]].append(f"{kind}/{entity.get(name_key)}")
    roles = sorted(h.split("/", 1)[1] for h in holders[SUPPORT_POLICY] if h.startswith("role/"))
    scan.harvest.account_facts(
        support_roles=roles,
        has_support_role=bool(roles),
        cloudshell_full_access_entities=sorted(holders[CLOUDSHELL_POLICY]),
    )


def _server_certificates(scan: Scan, region: str) -> None:
    answer = scan.pages("iam", region, "ListServerCertificates") or {}
    for cert in answer.get("ServerCertificateMetadataList", []):
        expires = cert.get("Expiration")
        days_left = None if expires is None else (expires - datetime.now(UTC)).days
        facts = {
            "name": cert.get("ServerCertificateName"),
            "expiration": expires.isoformat() if expires else None,
            "days_left": days_left,
            "is_expired": days_left is not None and days_left < 0,
        }
        scan.harvest.add(Draft(CERT, str(cert["Arn"]), facts))


COLLECTOR = Collector(
    name="iam",
    service="iam",
    resource_types=(USER, POLICY, CERT),
    operations=tuple(
        ("iam", op)
        for op in (
            "GetAccountPasswordPolicy",
            "GetAccountSummary",
            "ListVirtualMFADevices",
            "GenerateCredentialReport",
            "GetCredentialReport",
            "GetAccountAuthorizationDetails",
            "ListPolicies",
            "GetPolicyVersion",
            "ListServerCertificates",
        )
    ),
    run=run,
    regional=False,
    account_facts=(
        "password_policy",
        "root_access_keys_present",
        "root_mfa_enabled",
        "root_hardware_mfa",
        "root_last_used_days",
        "support_roles",
        "has_support_role",
        "cloudshell_full_access_entities",
    ),
)
