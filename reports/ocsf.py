"""OCSF 1.x JSON: findings for security data lakes (Security Lake, SIEMs).

A JSON array of events: one *Detection Finding* (class 2004) per failing or erroring
finding, and one *Compliance Finding* (class 2003) per framework control that findings
map to, with the control's verdict. Plain dicts, no runtime dependency; the tests check
the shape against the ``py-ocsf-models`` schema classes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from audit import governance as gov
from audit.models import Finding, Lifecycle, Severity, Status
from audit.reporting import Renderer, RenderOptions, ReportData
from reports._text import printable

OCSF_VERSION = "1.3.0"
FINDINGS_CATEGORY = 2
DETECTION_CLASS = 2004
COMPLIANCE_CLASS = 2003
ACTIVITY_CREATE = 1
SEVERITY_ID = {
    Severity.INFO: 1,
    Severity.LOW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
    Severity.CRITICAL: 5,
}
COMPLIANCE_STATUS = {"passed": (1, "Pass"), "failed": (3, "Fail"), "not_assessed": (0, "Unknown")}


def epoch_ms(stamp: str | None) -> int:
    """Milliseconds since the epoch of an ISO timestamp (0 when absent or malformed)."""
    if not stamp:
        return 0
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(moment.timestamp() * 1000)


def _metadata(data: ReportData) -> dict[str, Any]:
    return {
        "version": OCSF_VERSION,
        "product": {
            "name": "Rempart",
            "vendor_name": "Rempart",
            "version": data.tool_version or "0",
        },
        "correlation_uid": f"rempart-scan-{data.scan.id}",
    }


def _status(finding: Finding) -> tuple[int, str]:
    if finding.lifecycle is Lifecycle.ACCEPTED:
        return 3, "Suppressed"
    if finding.lifecycle is Lifecycle.RESOLVED:
        return 4, "Resolved"
    return (1, "New") if finding.lifecycle in (None, Lifecycle.NEW) else (2, "In Progress")


def detection(finding: Finding, data: ReportData) -> dict[str, Any]:
    """The Detection Finding event of one failing or erroring finding."""
    status_id, status = _status(finding)
    severity_id = SEVERITY_ID[finding.severity]
    return {
        "class_uid": DETECTION_CLASS,
        "class_name": "Detection Finding",
        "category_uid": FINDINGS_CATEGORY,
        "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": DETECTION_CLASS * 100 + ACTIVITY_CREATE,
        "severity_id": severity_id,
        "severity": finding.severity.value.capitalize(),
        "status_id": status_id,
        "status": status,
        "time": epoch_ms(data.scan.started_at),
        "message": printable(finding.message or finding.title),
        "metadata": _metadata(data),
        "finding_info": {
            "uid": finding.fingerprint,
            "title": printable(finding.title),
            "desc": printable(finding.message),
            "types": [finding.rule_id],
            "first_seen_time": epoch_ms(finding.first_seen) or None,
        },
        "resources": [
            {
                "uid": printable(finding.resource_key),
                "type": finding.resource_type,
                "name": printable(finding.target),
                "group": {"name": printable(finding.system)},
            }
        ],
        "remediation": {"desc": printable(finding.remediation or "-")},
        "unmapped": {
            "rule_id": finding.rule_id,
            "policy": finding.policy,
            "outcome": finding.status.value,
            "reason": finding.reason.value if finding.reason else None,
            "evidence": finding.evidence,
        },
    }


def compliance(result: gov.ControlResult, data: ReportData) -> dict[str, Any]:
    """The Compliance Finding event of one framework control."""
    status_id, status = COMPLIANCE_STATUS[result.state]
    severity = result.worst or Severity.INFO
    return {
        "class_uid": COMPLIANCE_CLASS,
        "class_name": "Compliance Finding",
        "category_uid": FINDINGS_CATEGORY,
        "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": COMPLIANCE_CLASS * 100 + ACTIVITY_CREATE,
        "severity_id": SEVERITY_ID[severity],
        "severity": severity.value.capitalize(),
        "time": epoch_ms(data.scan.started_at),
        "metadata": _metadata(data),
        "finding_info": {
            "uid": f"{data.scan.id}:{result.framework}:{result.control_id}",
            "title": f"{result.framework} {result.control_id}",
        },
        "compliance": {
            "standards": [result.framework],
            "control": result.control_id,
            "requirements": [result.control_id],
            "status_id": status_id,
            "status": status,
        },
        "unmapped": {"failed": result.failed, "passed": result.passed, "errors": result.errors},
    }


def build(data: ReportData) -> list[dict[str, Any]]:
    """Every OCSF event of the scan."""
    events = [detection(f, data) for f in data.findings if f.status in (Status.FAIL, Status.ERROR)]
    for score in gov.framework_scores(data.findings).values():
        events.extend(
            compliance(r, data) for r in score.controls if r.passed or r.failed or r.errors
        )
    return events


def render(data: ReportData, options: RenderOptions) -> bytes:
    """OCSF events as a UTF-8 JSON array."""
    return json.dumps(build(data), ensure_ascii=False, indent=1, default=str).encode()


RENDERER = Renderer(
    name="ocsf",
    extensions=(".ocsf.json",),
    description="OCSF 1.x Detection and Compliance Findings (JSON array)",
    render=render,
)
