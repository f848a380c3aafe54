"""Score formulas checked against hand-computed cases."""

from __future__ import annotations

from datetime import date

import pytest

from audit import governance as gov
from audit.models import Lifecycle, Severity, Status


def test_index_weighs_failures_fully_accepted_by_half_and_leaves_errors_out(make_finding):
    # Given weights critical 10, high 5, medium 2, low 1, info 0
    findings = [
        make_finding(severity=Severity.CRITICAL, status=Status.PASS),
        make_finding(severity=Severity.MEDIUM, status=Status.FAIL),
        make_finding(severity=Severity.MEDIUM, status=Status.FAIL, lifecycle=Lifecycle.ACCEPTED),
        make_finding(severity=Severity.CRITICAL, status=Status.ERROR),
        make_finding(severity=Severity.INFO, status=Status.FAIL),
        make_finding(severity=Severity.HIGH, status=Status.SKIP),
    ]
    # When / then: T = 10 + 2 + 2 + 0 = 14 (the error and the skip weigh nothing),
    # against = 2 + 2/2 = 3 → 5 × 11/14 = 3.93 → 3.9 (an error as half a failure: 3.2)
    assert gov.security_index(findings) == 3.9
    assert gov.grade(3.9) == "C"
    assert gov.advised_validity(3.9).key == "2y"


def test_coverage_counts_findings_that_applied(make_finding):
    # Given 3 evaluated (one of them accepted), 1 error and 2 skips
    findings = [
        make_finding(status=Status.PASS),
        make_finding(status=Status.FAIL, severity=Severity.INFO),
        make_finding(status=Status.FAIL, lifecycle=Lifecycle.ACCEPTED),
        make_finding(status=Status.ERROR),
        make_finding(status=Status.SKIP),
        make_finding(status=Status.SKIP),
    ]
    # When / then: 3 of 4 applicable, whatever their severity
    cover = gov.coverage(findings)
    assert (cover.evaluated, cover.applicable, cover.percent) == (3, 4, 75.0)
    assert cover.meets(75) and not cover.meets(75.1)


@pytest.mark.parametrize(
    ("statuses", "scan_status", "reason"),
    [
        ([Status.PASS] * 9 + [Status.ERROR], "complete", None),
        ([Status.PASS] * 8 + [Status.ERROR], "complete", "low_coverage"),
        ([Status.ERROR] * 48, "complete", "low_coverage"),
        ([Status.PASS] * 10, "interrupted", "incomplete_scan"),
        ([Status.PASS] * 10, "failed", "incomplete_scan"),
        ([Status.SKIP] * 3, "complete", "nothing_applicable"),
        ([], "complete", "nothing_applicable"),
    ],
)
def test_opinion_is_withheld_without_enough_evidence(make_finding, statuses, scan_status, reason):
    findings = [make_finding(status=s, severity=Severity.LOW) for s in statuses]
    verdict = gov.opinion(findings, scan_status)
    assert verdict.withheld == reason
    if reason is None:
        assert (verdict.index, verdict.grade, verdict.validity.key) == (5.0, "A", "3y")
    else:
        assert (verdict.index, verdict.grade, verdict.validity.key) == (None, "-", "unknown")
        assert not verdict.validity.advised


def test_informational_findings_alone_give_no_index(make_finding):
    findings = [make_finding(status=Status.PASS, severity=Severity.INFO) for _ in range(3)]
    assert gov.opinion(findings).withheld == "nothing_weighed"


def test_zero_threshold_still_needs_something_evaluated(make_finding):
    findings = [make_finding(status=Status.ERROR) for _ in range(3)]
    assert gov.opinion(findings, min_coverage=0).withheld == "low_coverage"
    assert gov.opinion([*findings, make_finding()], min_coverage=0).index == 5.0  # 25 %


def test_open_critical_caps_index_below_homologation_threshold(make_finding):
    findings = [make_finding(severity=Severity.LOW, status=Status.PASS) for _ in range(10)]
    findings.append(make_finding(severity=Severity.CRITICAL, status=Status.FAIL))
    # 5 × (1 − 10/20) = 2.5, capped at 1.9 by the open critical failure
    assert gov.security_index(findings) == 1.9
    validity = gov.advised_validity(1.9)
    assert (validity.advised, validity.months, validity.key) == (False, 6, "not_advised")


def test_open_high_caps_index_at_3_9(make_finding):
    findings = [make_finding(severity=Severity.CRITICAL, status=Status.PASS) for _ in range(20)]
    findings.append(make_finding(severity=Severity.HIGH, status=Status.FAIL))
    # 5 × (1 − 5/205) = 4.88 → capped 3.9
    assert gov.security_index(findings) == 3.9


def test_accepted_critical_does_not_cap(make_finding):
    findings = [
        make_finding(severity=Severity.CRITICAL, status=Status.PASS),
        make_finding(severity=Severity.CRITICAL, status=Status.FAIL, lifecycle=Lifecycle.ACCEPTED),
    ]
    # 5 × (1 − 5/20) = 3.75 → 3.8 (rounded half up)
    assert gov.security_index(findings) == 3.8


def test_expired_acceptance_reopens_the_failure(make_finding):
    finding = make_finding(status=Status.FAIL, lifecycle=Lifecycle.EXPIRED)
    assert gov.outcome(finding) == "fail"
    assert gov.security_index([finding]) == 0.0


@pytest.mark.parametrize(("findings", "expected"), [([], None)])
def test_no_weighed_finding_gives_no_index(findings, expected):
    assert gov.security_index(findings) is expected
    assert gov.grade(None) == "-"
    assert gov.advised_validity(None).key == "unknown"


@pytest.mark.parametrize(
    ("index", "letter", "validity"),
    [
        (5.0, "A", "3y"),
        (4.5, "A", "3y"),
        (4.4, "B", "3y"),
        (4.0, "B", "3y"),
        (3.9, "C", "2y"),
        (3.0, "C", "2y"),
        (2.9, "D", "1y"),
        (2.0, "D", "1y"),
        (1.9, "E", "not_advised"),
        (1.0, "E", "not_advised"),
        (0.9, "F", "not_advised"),
        (0.0, "F", "not_advised"),
    ],
)
def test_grade_and_validity_bands(index, letter, validity):
    assert gov.grade(index) == letter
    assert gov.advised_validity(index).key == validity


def test_framework_score_counts_controls(make_finding):
    # Given 21.2.h with a pass and a fail, 21.2.e with a pass and an accepted failure,
    # 21.2.j with an error only
    findings = [
        make_finding(controls={"nis2": ("21.2.h",)}, status=Status.PASS),
        make_finding(controls={"nis2": ("21.2.h",)}, status=Status.FAIL),
        make_finding(controls={"nis2": ("21.2.e",)}, status=Status.PASS),
        make_finding(
            controls={"nis2": ("21.2.e",)}, status=Status.FAIL, lifecycle=Lifecycle.ACCEPTED
        ),
        make_finding(controls={"nis2": ("21.2.j",)}, status=Status.ERROR),
    ]
    # When
    score = gov.framework_scores(findings)["nis2"]
    # Then: 1 passed, 1 failed, the 8 other controls of the catalogue not assessed
    assert (score.passed, score.failed, score.not_assessed) == (1, 1, 8)
    assert score.percent == 50.0
    states = {r.control_id: r.state for r in score.controls}
    assert states["21.2.h"] == "failed" and states["21.2.e"] == "passed"
    assert states["21.2.j"] == "not_assessed"


def test_aliases_count_as_the_catalogue_control(make_finding):
    findings = [make_finding(controls={"anssi-tls": ("2.2",)}, status=Status.PASS)]
    states = {r.control_id: r.state for r in gov.framework_scores(findings)["anssi-tls"].controls}
    assert states["§2.2"] == "passed"


def test_heatmap_counts_failures_by_family_and_severity(make_finding):
    findings = [
        make_finding(controls={"iso27001": ("A.8.24",)}, status=Status.FAIL),
        make_finding(
            controls={"iso27001": ("A.8.20", "A.5.15")},
            status=Status.FAIL,
            severity=Severity.CRITICAL,
        ),
        make_finding(controls={"iso27001": ("A.8.24",)}, status=Status.PASS),
    ]
    table = gov.heatmap(findings, "iso27001")
    assert list(table) == ["A.5", "A.8"]
    assert table["A.8"][Severity.HIGH] == 1 and table["A.8"][Severity.CRITICAL] == 1
    assert table["A.5"][Severity.CRITICAL] == 1


@pytest.mark.parametrize(
    ("severity", "criticality", "expected"),
    [
        (Severity.CRITICAL, "low", "P1"),
        (Severity.HIGH, "high", "P1"),
        (Severity.HIGH, "critical", "P1"),
        (Severity.HIGH, "medium", "P2"),
        (Severity.MEDIUM, "critical", "P2"),
        (Severity.MEDIUM, "medium", "P3"),
        (Severity.LOW, "critical", "P3"),
    ],
)
def test_priority_matrix(severity, criticality, expected):
    assert gov.priority(severity, criticality) == expected


def test_sla_due_dates_and_overrides(make_finding):
    finding = make_finding(status=Status.FAIL, severity=Severity.HIGH, first_seen="2024-04-01")
    assert gov.due_date(finding, gov.sla_days()) == date(2024, 5, 1)
    assert gov.due_date(finding, gov.sla_days({"high": 10})) == date(2024, 4, 11)
    info = make_finding(status=Status.FAIL, severity=Severity.INFO)
    assert gov.due_date(info, gov.sla_days()) is None


def test_sla_breaches_of_the_report(report_data):
    late = gov.sla_breaches(report_data, gov.sla_days())
    # TLS-PROTO-001 (high, 2024-04-01 + 30) and NET-PORT-001 (high, expired acceptance,
    # 2024-03-01 + 30) are past due on 2024-06-01; the critical one is due 2024-06-06
    assert [f.rule_id for f, _ in late] == ["NET-PORT-001", "TLS-PROTO-001"]


def test_action_plan_groups_orders_and_assigns_owners(report_data):
    plan = gov.action_plan(report_data)
    assert [a.rule_id for a in plan] == [
        "TLS-CERT-001",
        "NET-PORT-001",
        "TLS-PROTO-001",
        "NET-PORT-002",
    ]
    first = plan[0]
    assert (first.priority, first.owner, first.status) == ("P1", "DSI — pôle web", "new")
    assert first.due == date(2024, 6, 6)
    assert plan[1].status == "overdue"
    assert plan[3].priority == "P3" and plan[3].status == "reopened"
    assert "TLS-CERT-002" not in {a.rule_id for a in plan}  # accepted


def test_action_plan_groups_across_resources(make_finding, report_data):
    from dataclasses import replace

    extra = make_finding(status=Status.FAIL, system="Messagerie", first_seen="2024-05-25")
    data = replace(report_data, findings=(*report_data.findings, extra))
    action = next(a for a in gov.action_plan(data) if a.rule_id == "TLS-PROTO-001")
    assert action.resources == 2
    assert action.systems == ("Messagerie", "Portail usagers")
    assert action.owner == "DSI — pôle infrastructure, DSI — pôle web"


def test_score_snapshot_is_flat_and_json_safe(report_data):
    import json

    snapshot = gov.score_snapshot(report_data)
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["open_critical"] == 1 and snapshot["open_high"] == 2
    assert snapshot["accepted"] == 1 and snapshot["sla_breaches"] == 2
    # 8 of 9 applicable findings evaluated: 88.8 % < 90 %, so no index is recorded
    assert snapshot["coverage"] == 88.8 and snapshot["index"] is None
    lenient = gov.score_snapshot(report_data, min_coverage=80)
    assert lenient["index"] == gov.security_index(report_data.findings) == 1.5
    assert "fw_nis2" in snapshot


def test_system_indices_cover_declared_systems(report_data):
    indices = gov.system_indices(report_data)
    assert set(indices) == {"Portail usagers", "Messagerie", "Compte AWS production"}
    # AWS: one critical error and one low pass: 50 % coverage, no index
    assert indices["Compte AWS production"] is None
    # Portail: T = 5 + 10 + 5 + 1 + 2 = 23, against 21 → 5 × 2/23 = 0.43 → 0.4
    assert indices["Portail usagers"] == 0.4
    # Messagerie: a high pass and a medium accepted: 5 × (1 − 1/7) = 4.29 → 4.3
    assert indices["Messagerie"] == 4.3
    assert gov.system_indices(report_data, min_coverage=50)["Compte AWS production"] == 5.0


@pytest.mark.parametrize(
    ("counts", "status", "expected"),
    [
        ({"index": 3.4, "coverage": 95.0}, "complete", 3.4),
        ({"index": 3.4, "coverage": 89.9}, "complete", None),  # below today's threshold
        ({"index": 2.4}, "complete", 2.4),  # recorded before coverage was
        ({"index": 2.4}, "interrupted", None),  # an old snapshot of an interrupted scan
        ({"index": None, "coverage": 0.0}, "complete", None),
    ],
)
def test_trend_withholds_earlier_indices_by_the_same_rule(counts, status, expected):
    assert gov.historic_index(counts, status, gov.DEFAULT_MIN_COVERAGE) == expected
