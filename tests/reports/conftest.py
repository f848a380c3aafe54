"""Report fixtures: two scans of a small estate, with hostile strings from the targets."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from audit.models import (
    Acceptance,
    Finding,
    Lifecycle,
    Reason,
    Resource,
    ScanSummary,
    Severity,
    Status,
    SystemInfo,
    fingerprint,
)
from audit.reporting import ReportData

SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example/x","clic")'
ANSI = "\x1b[31mROUGE\x1b[0m"
HOSTILE_HOST = f"{SCRIPT}.portail.example.gouv.fr"
HOSTILE_STRINGS = (SCRIPT, FORMULA, ANSI)

TLS_CONTROLS = {
    "anssi-tls": ("R4",),
    "nis2": ("21.2.h",),
    "iso27001": ("A.8.24",),
    "cis-v8": ("3.10",),
    "rgs": ("RègleFact-1",),
}
CERT_CONTROLS = {"anssi-tls": ("§3.2",), "nis2": ("21.2.h",), "iso27001": ("A.8.24",)}
PORT_CONTROLS = {
    "anssi-hygiene": ("23",),
    "nis2": ("21.2.e",),
    "iso27001": ("A.8.20",),
    "cis-v8": ("4.4",),
}
AWS_CONTROLS = {
    "cis-aws": ("1.5",),
    "nis2": ("21.2.j",),
    "iso27001": ("A.8.5",),
    "anssi-hygiene": ("13",),
}

SYSTEMS = (
    SystemInfo("Portail usagers", owner="DSI — pôle web", criticality="high"),
    SystemInfo("Messagerie", owner="DSI — pôle infrastructure", criticality="medium"),
    SystemInfo("Compte AWS production", owner=f"Équipe cloud {SCRIPT}", criticality="critical"),
)

FindingFactory = Callable[..., Finding]


@pytest.fixture
def make_finding() -> FindingFactory:
    """Build a finding with sensible defaults; keywords override any field."""
    counter = itertools.count(1)

    def make(**overrides: Any) -> Finding:
        n = next(counter)
        fields: dict[str, Any] = {
            "rule_id": "TLS-PROTO-001",
            "policy": "anssi-tls",
            "title": "Only TLS 1.2 and TLS 1.3 are accepted",
            "resource_type": "tls.endpoint",
            "resource_key": f"tls://host{n}.example.gouv.fr:443",
            "target": f"tls://host{n}.example.gouv.fr",
            "system": "Portail usagers",
            "status": Status.PASS,
            "severity": Severity.HIGH,
            "message": "TLSv1.2, TLSv1.3",
            "evidence": ["TLSv1.2", "TLSv1.3"],
            "controls": TLS_CONTROLS,
            "remediation": "Disable SSLv3, TLS 1.0 and TLS 1.1.",
            "lifecycle": Lifecycle.OPEN,
            "first_seen": "2024-04-01T08:00:00+00:00",
            "scan_id": 2,
        }
        fields.update(overrides)
        return Finding(**fields)

    return make


def _findings(make: FindingFactory) -> list[Finding]:
    return [
        make(
            status=Status.FAIL,
            message="server accepts TLSv1.0, TLSv1.1",
            evidence=["TLSv1.0", "TLSv1.1", "TLSv1.2"],
            first_seen="2024-04-01",
        ),
        make(
            system="Messagerie",
            resource_key="smtp://mx.example.gouv.fr:25",
            target="smtp://mx.example.gouv.fr",
        ),
        make(
            rule_id="TLS-CERT-001",
            title="Certificate is valid for at least 30 days",
            severity=Severity.CRITICAL,
            status=Status.FAIL,
            controls=CERT_CONTROLS,
            resource_key=f"tls://{HOSTILE_HOST}:443",
            target=f"tls://{HOSTILE_HOST}",
            message=f"certificate for CN={SCRIPT} {ANSI} expired 3 days ago",
            evidence={"subject": f"CN={SCRIPT}\nO={FORMULA}", "days_left": -3},
            lifecycle=Lifecycle.NEW,
            first_seen="2024-05-30",
            remediation="Renew it.",
        ),
        make(
            rule_id="TLS-CERT-002",
            title="Certificate key is at least 2048 bits",
            severity=Severity.MEDIUM,
            status=Status.FAIL,
            controls=CERT_CONTROLS,
            system="Messagerie",
            resource_key="smtp://mx.example.gouv.fr:25",
            target="smtp://mx.example.gouv.fr",
            message="RSA 1024 bits",
            evidence=1024,
            lifecycle=Lifecycle.ACCEPTED,
            first_seen="2024-02-01",
        ),
        make(
            rule_id="NET-PORT-001",
            title="No administration port exposed",
            policy="exposure-baseline",
            resource_type="net.service",
            status=Status.FAIL,
            controls=PORT_CONTROLS,
            resource_key="tcp://203.0.113.10:22",
            target="ports://203.0.113.10",
            message=f"ssh open {FORMULA}",
            evidence={"port": 22, "product": f"OpenSSH {ANSI}"},
            lifecycle=Lifecycle.EXPIRED,
            first_seen="2024-03-01",
        ),
        make(
            rule_id="NET-PORT-002",
            title="No clear-text service exposed",
            policy="exposure-baseline",
            resource_type="net.service",
            status=Status.FAIL,
            severity=Severity.LOW,
            controls=PORT_CONTROLS,
            resource_key="tcp://203.0.113.10:80",
            target="ports://203.0.113.10",
            message="http open",
            lifecycle=Lifecycle.REOPENED,
            first_seen="2024-05-20",
        ),
        make(
            rule_id="AWS-IAM-001",
            title="Root account has MFA",
            policy="aws-baseline",
            resource_type="aws.account",
            status=Status.ERROR,
            severity=Severity.CRITICAL,
            reason=Reason.ACCESS_DENIED,
            controls=AWS_CONTROLS,
            system="Compte AWS production",
            resource_key="arn:aws:iam::123456789012:root",
            target="aws://prod",
            message="iam:GetAccountSummary denied",
            evidence=None,
            lifecycle=None,
        ),
        make(
            rule_id="AWS-S3-001",
            title="Buckets block public access",
            policy="aws-baseline",
            resource_type="aws.s3.bucket",
            status=Status.SKIP,
            severity=Severity.HIGH,
            controls={"cis-aws": ("2.1.4",)},
            system="Compte AWS production",
            resource_key="arn:aws:s3:::logs",
            target="aws://prod",
            message="not applicable",
            evidence=None,
            lifecycle=None,
        ),
        make(
            rule_id="AWS-S3-002",
            title="Buckets are encrypted",
            policy="aws-baseline",
            resource_type="aws.s3.bucket",
            status=Status.PASS,
            severity=Severity.LOW,
            controls={"cis-aws": ("2.1.1",), "iso27001": ("A.8.24",)},
            system="Compte AWS production",
            resource_key=f"arn:aws:s3:::{SCRIPT}",
            target="aws://prod",
            message=f"tag owner={FORMULA}",
            evidence={"tags": {"owner": FORMULA, "note": "ligne 1\nligne 2"}},
        ),
        make(
            rule_id="TLS-HSTS-001",
            title="HSTS is enabled",
            severity=Severity.MEDIUM,
            status=Status.PASS,
            lifecycle=Lifecycle.RESOLVED,
            resource_key="tls://a:443",
        ),
    ]


@pytest.fixture
def findings(make_finding: FindingFactory) -> list[Finding]:
    """The findings of the second scan."""
    return _findings(make_finding)


@pytest.fixture
def report_data(findings: list[Finding]) -> ReportData:
    """Scan #2 with scan #1 in its history, systems, a live and a lapsed acceptance."""
    return build_report_data(findings)


def build_report_data(findings: list[Finding]) -> ReportData:
    """The body of the ``report_data`` fixture (also used by the demo script)."""
    first = ScanSummary(
        1,
        "2024-05-01T08:00:00+00:00",
        "2024-05-01T08:05:00+00:00",
        "complete",
        ("anssi-tls", "exposure-baseline"),
        {
            "pass": 5,
            "fail": 5,
            "error": 0,
            "skip": 1,
            "fail_critical": 0,
            "fail_high": 3,
            "fail_medium": 1,
            "fail_low": 1,
            "lifecycle_new": 10,
            "index": 2.4,
            "sla_breaches": 0,
        },
    )
    scan = ScanSummary(
        2,
        "2024-06-01T08:00:00+00:00",
        "2024-06-01T08:06:00+00:00",
        "complete",
        ("anssi-tls", "exposure-baseline", "aws-baseline"),
        {"pass": 3, "fail": 5, "error": 1, "skip": 1},
        scope_declared=False,
    )
    accepted = next(f for f in findings if f.rule_id == "TLS-CERT-002")
    lapsed = next(f for f in findings if f.rule_id == "NET-PORT-001")
    acceptances = (
        Acceptance(
            1,
            accepted.fingerprint,
            accepted.rule_id,
            accepted.resource_key,
            owner="RSSI",
            reason=f"Legacy relay, replaced in Q3 {SCRIPT}",
            until="2024-07-15",
            created_at="2024-02-10",
            decided_by="",
            compensating="Relay only reachable from the internal network",
        ),
        Acceptance(
            2,
            lapsed.fingerprint,
            lapsed.rule_id,
            lapsed.resource_key,
            owner="DSI",
            reason="Migration window",
            until="2024-05-15",
            created_at="2024-03-02",
            decided_by="Commission du 2024-03-01",
        ),
    )
    resources = tuple(
        Resource(f.resource_type, f.resource_key, f.target, f.system, {"host": f.resource_key})
        for f in {f.resource_key: f for f in findings}.values()
    )
    return ReportData(
        scan=scan,
        findings=tuple(findings),
        resources=resources,
        systems=SYSTEMS,
        acceptances=acceptances,
        history=(first,),
        generated_at="2024-06-01T09:00:00+00:00",
        tool_version="0.1.0",
    )


def big_report(n: int) -> ReportData:
    """``n`` findings over 4 systems and 40 rules (for the performance check)."""
    systems = [SystemInfo(f"Système {i}", owner=f"Pôle {i}", criticality="high") for i in range(4)]
    statuses = (Status.PASS, Status.PASS, Status.PASS, Status.FAIL, Status.ERROR, Status.SKIP)
    severities = tuple(Severity)
    findings = []
    for i in range(n):
        rule = f"TLS-RULE-{i % 40:03d}"
        key = f"tls://h{i}.example.gouv.fr:443"
        status = statuses[i % len(statuses)]
        findings.append(
            Finding(
                rule_id=rule,
                policy="anssi-tls",
                title=f"Rule {i % 40}",
                resource_type="tls.endpoint",
                resource_key=key,
                target=key,
                system=systems[i % 4].name,
                status=status,
                severity=severities[i % 5],
                message=f"observed {i}",
                evidence={"v": i},
                controls=TLS_CONTROLS,
                remediation="Fix it.",
                reason=Reason.TIMEOUT if status is Status.ERROR else None,
                lifecycle=Lifecycle.OPEN,
                first_seen="2024-05-01",
                scan_id=3,
            )
        )
    scan = ScanSummary(3, "2024-06-01T08:00:00+00:00", None, "complete", ("anssi-tls",), {})
    return ReportData(
        scan=scan,
        findings=tuple(findings),
        resources=(),
        systems=tuple(systems),
        generated_at="2024-06-02T00:00:00+00:00",
    )


def fingerprint_of(rule_id: str, key: str) -> str:
    """Shortcut for tests that match acceptances to findings."""
    return fingerprint(rule_id, key)


@pytest.fixture
def big_report_factory() -> Callable[[int], ReportData]:
    """The :func:`big_report` builder, for tests that need many findings."""
    return big_report


@pytest.fixture
def systems() -> tuple[SystemInfo, ...]:
    """The three systems of the fixture estate."""
    return SYSTEMS
