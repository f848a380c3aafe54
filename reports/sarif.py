"""SARIF 2.1.0: findings for code-scanning dashboards (GitHub, GitLab, Defect tools).

One ``run`` whose ``tool.driver.rules`` lists every rule that produced a finding (help
text = remediation, ``security-severity`` so dashboards rank them), and one ``result`` per
failing or erroring finding. ``partialFingerprints`` carries our fingerprint so a finding
keeps its identity across uploads; the location names the target (a URI, not a file).
"""

from __future__ import annotations

import json
from typing import Any

from audit.models import Finding, Severity, Status
from audit.reporting import Renderer, RenderOptions, ReportData
from reports._text import printable

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def _rule(finding: Finding) -> dict[str, Any]:
    tags = ["security", *(f"{fw}:{cid}" for fw, ids in finding.controls.items() for cid in ids)]
    return {
        "id": finding.rule_id,
        "name": finding.rule_id.replace("-", ""),
        "shortDescription": {"text": printable(finding.title)},
        "fullDescription": {"text": printable(finding.title)},
        "help": {"text": printable(finding.remediation or finding.title)},
        "defaultConfiguration": {"level": LEVEL[finding.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "precision": "high",
            "tags": tags,
            "policy": finding.policy,
        },
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    is_error = finding.status is Status.ERROR
    text = printable(finding.message or finding.title)
    if is_error and finding.reason:
        text = f"[{finding.reason.value}] {text}"
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": "warning" if is_error else LEVEL[finding.severity],
        "kind": "review" if is_error else "fail",
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": printable(finding.target)}},
                "logicalLocations": [
                    {
                        "name": printable(finding.resource_key),
                        "kind": "resource",
                        "fullyQualifiedName": printable(f"{finding.system}/{finding.resource_key}"),
                    }
                ],
            }
        ],
        "partialFingerprints": {"rempart/v1": finding.fingerprint},
        "properties": {
            "system": printable(finding.system),
            "resourceType": finding.resource_type,
            "status": finding.status.value,
            "lifecycle": finding.lifecycle.value if finding.lifecycle else None,
            "evidence": finding.evidence,
        },
    }
    return result


def build(data: ReportData) -> dict[str, Any]:
    """The SARIF log as a dict (one run)."""
    rules: dict[str, int] = {}
    rule_objects: list[dict[str, Any]] = []
    results = []
    for finding in data.findings:
        if finding.status not in (Status.FAIL, Status.ERROR):
            continue
        if finding.rule_id not in rules:
            rules[finding.rule_id] = len(rule_objects)
            rule_objects.append(_rule(finding))
        results.append(_result(finding, rules[finding.rule_id]))
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Rempart",
                        "version": data.tool_version or "0",
                        "rules": rule_objects,
                    }
                },
                "automationDetails": {"id": f"rempart/scan/{data.scan.id}"},
                "invocations": [
                    {
                        "executionSuccessful": data.scan.status not in ("interrupted", "failed"),
                        "startTimeUtc": data.scan.started_at,
                        **({"endTimeUtc": data.scan.finished_at} if data.scan.finished_at else {}),
                    }
                ],
                "results": results,
            }
        ],
    }


def render(data: ReportData, options: RenderOptions) -> bytes:
    """SARIF 2.1.0 as UTF-8 JSON."""
    return json.dumps(build(data), ensure_ascii=False, indent=2, default=str).encode()


RENDERER = Renderer(
    name="sarif",
    extensions=(".sarif", ".sarif.json"),
    description="SARIF 2.1.0 for code-scanning dashboards",
    render=render,
)
