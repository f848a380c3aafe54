"""The committee report's content, computed once and handed to the templates.

Templates only lay out; every figure comes from :mod:`audit.governance` through the
builders below, so the HTML and the PDF say the same thing and stay testable. Untrusted
strings are passed as they are (Jinja2 autoescapes them) after control characters are
made visible.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from audit import governance as gov
from audit.frameworks import get_framework
from audit.models import Acceptance, Finding, ScanSummary, Severity, SystemInfo
from audit.reporting import RenderOptions, ReportData
from reports._text import evidence_text, one_line, printable

SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
APPENDIX_ROWS_PER_RULE = 25
APPENDIX_ROWS_TOTAL = 3000
TOP_RISKS = 5


@dataclass(frozen=True)
class SystemView:
    """One system's line in the posture table."""

    name: str
    owner: str
    criticality: str
    index: float | None
    grade: str
    outcomes: Mapping[str, int]
    open: Mapping[str, int]
    coverage: gov.Coverage
    withheld: str | None  # why there is no index (gov.Opinion.withheld)


@dataclass(frozen=True)
class FrameworkView:
    """One framework's line: title, source, percentages, heatmap."""

    id: str
    title: str
    source: str
    score: gov.FrameworkScore
    heatmap: list[tuple[str, list[int]]]
    manual: list[str]


@dataclass(frozen=True)
class TrendPoint:
    """One scan in the trend: index and counts (None when the scan did not record it)."""

    scan_id: int
    day: str
    index: float | None
    open: Mapping[str, int]
    new: int
    resolved: int
    reopened: int
    sla_breaches: int | None


@dataclass(frozen=True)
class AcceptanceView:
    """An accepted risk as the committee reviews it."""

    acceptance: Acceptance
    title: str
    system: str
    days_left: int
    state: str  # live | expiring | expired | revoked


@dataclass(frozen=True)
class AppendixRule:
    """One rule's evidence inside one system of the appendix."""

    rule_id: str
    title: str
    severity: str
    counts: Mapping[str, int]
    rows: list[Finding]
    hidden: int


@dataclass
class Committee:
    """Everything the committee template shows."""

    lang: str
    title: str
    data: ReportData
    today: date
    opinion: gov.Opinion
    previous_index: float | None
    open: Mapping[str, int]
    systems: list[SystemView]
    frameworks: list[FrameworkView]
    actions: list[gov.Action]
    top_risks: list[gov.Action]
    breaches: list[tuple[Finding, date]]
    acceptances: list[AcceptanceView]
    errors: list[tuple[str, str, int, str]]
    resource_types: list[tuple[str, int]]
    trend: list[TrendPoint]
    appendix: list[tuple[str, list[AppendixRule]]]
    sla: Mapping[Severity, int]
    readers: list[str]
    marking: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> float | None:
        """The overall index, None when the evidence does not support one."""
        return self.opinion.index

    @property
    def grade(self) -> str:
        """The overall grade (``-`` without an index)."""
        return self.opinion.grade

    @property
    def validity(self) -> gov.Validity:
        """The advised homologation validity (``unknown`` without an index)."""
        return self.opinion.validity

    @property
    def trend_arrow(self) -> str:
        """up, down or flat against the previous scan's index; unknown when either has
        none (a missing index is not a stable one)."""
        if self.index is None or self.previous_index is None:
            return "unknown"
        delta = self.index - self.previous_index
        return "up" if delta >= 0.1 else "down" if delta <= -0.1 else "flat"

    @property
    def sla_by_name(self) -> dict[str, int | str]:
        """SLA days by severity name (``—`` for a severity without SLA)."""
        return {s.value: self.sla.get(s, "—") for s in Severity}

    @property
    def to_approve(self) -> list[AcceptanceView]:
        """Acceptances the committee must decide: never approved, expiring or lapsed."""
        return [
            a
            for a in self.acceptances
            if a.state in ("expiring", "expired")
            or (a.state == "live" and not a.acceptance.decided_by)
        ]


def sla_from_options(options: RenderOptions) -> dict[Severity, int]:
    """The SLA table, with ``sla.<severity>=DAYS`` overrides from the render options."""
    overrides = {
        k.removeprefix("sla."): int(v)
        for k, v in options.extra.items()
        if k.startswith("sla.") and v.strip().isdigit()
    }
    return gov.sla_days(overrides)


def min_coverage_from_options(options: RenderOptions) -> float:
    """The coverage threshold (percent) below which no index is given.

    From ``min_coverage`` in the render options (``--min-coverage``), else the default;
    a value outside 0–100 or not a number is ignored rather than trusted.
    """
    raw = options.extra.get("min_coverage", "")
    try:
        value = float(raw)
    except ValueError:
        return gov.DEFAULT_MIN_COVERAGE
    return value if 0 <= value <= 100 else gov.DEFAULT_MIN_COVERAGE


def _systems(data: ReportData, min_coverage: float) -> list[SystemView]:
    declared = gov.systems_by_name(data)
    views = []
    for name, items in gov.findings_by_system(data).items():
        info = declared.get(name, SystemInfo(name))
        verdict = gov.opinion(items, data.scan.status, min_coverage)
        views.append(
            SystemView(
                printable(name),
                printable(info.owner),
                info.criticality,
                verdict.index,
                verdict.grade,
                Counter(gov.outcome(f) for f in items),
                gov.open_by_severity(items),
                verdict.coverage,
                verdict.withheld,
            )
        )
    return views


def _frameworks(data: ReportData, lang: str) -> list[FrameworkView]:
    views = []
    for fw_id, score in gov.framework_scores(data.findings).items():
        catalogue = get_framework(fw_id)
        table = gov.heatmap(data.findings, fw_id)
        rows = [
            (
                catalogue.family_label(fam, lang) if catalogue else fam,
                [counts.get(s, 0) for s in SEVERITIES],
            )
            for fam, counts in table.items()
        ]
        manual = [r.control_id for r in score.controls if r.state == "not_assessed"]
        views.append(
            FrameworkView(
                fw_id,
                catalogue.label(lang) if catalogue else fw_id,
                catalogue.source if catalogue else "",
                score,
                rows,
                manual,
            )
        )
    return views


def _acceptances(data: ReportData, today: date) -> list[AcceptanceView]:
    wanted = {(a.rule_id, a.resource_key) for a in data.acceptances}
    by_key = {
        (f.rule_id, f.resource_key): f
        for f in data.findings
        if (f.rule_id, f.resource_key) in wanted
    }
    views = []
    for acc in data.acceptances:
        finding = by_key.get((acc.rule_id, acc.resource_key))
        until = gov.parse_day(acc.until) or today
        days = (until - today).days
        if acc.revoked_at:
            state = "revoked"
        elif days < 0:
            state = "expired"
        elif days <= gov.EXPIRING_SOON_DAYS:
            state = "expiring"
        else:
            state = "live"
        views.append(
            AcceptanceView(
                acc,
                printable(finding.title) if finding else acc.rule_id,
                printable(finding.system) if finding else "",
                days,
                state,
            )
        )
    order = {"expired": 0, "expiring": 1, "live": 2, "revoked": 3}
    return sorted(views, key=lambda v: (order[v.state], v.days_left))


def _errors(findings: Sequence[Finding]) -> list[tuple[str, str, int, str]]:
    """Unevaluated checks grouped by (reason, rule): count and one example message."""
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding.status.value == "error":
            reason = finding.reason.value if finding.reason else "bug"
            groups[(reason, finding.rule_id)].append(finding)
    return [
        (reason, rule, len(items), one_line(items[0].message))
        for (reason, rule), items in sorted(groups.items())
    ]


def _trend_point(summary: ScanSummary, min_coverage: float) -> TrendPoint:
    counts: Mapping[str, Any] = summary.counts

    def pick(*keys: str) -> int:
        return next((int(counts[k]) for k in keys if counts.get(k) is not None), 0)

    breaches = counts.get("sla_breaches")
    return TrendPoint(
        summary.id,
        summary.started_at[:10],
        gov.historic_index(counts, summary.status, min_coverage),
        {s.value: pick(f"open_{s.value}", f"fail_{s.value}") for s in SEVERITIES},
        pick("new", "lifecycle_new"),
        pick("resolved", "lifecycle_resolved"),
        pick("reopened", "lifecycle_reopened"),
        int(breaches) if isinstance(breaches, int) else None,
    )


def _trend(data: ReportData, snapshot: Mapping[str, Any], min_coverage: float) -> list[TrendPoint]:
    current = ScanSummary(
        data.scan.id,
        data.scan.started_at,
        data.scan.finished_at,
        data.scan.status,
        data.scan.policies,
        snapshot,
    )
    points = [*data.history, current]
    return [_trend_point(s, min_coverage) for s in points]


def _appendix(data: ReportData) -> list[tuple[str, list[AppendixRule]]]:
    """Evidence grouped by system then rule; rows capped so 100k findings stay fast."""
    tree: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for finding in data.findings:
        tree[finding.system][finding.rule_id].append(finding)
    budget = APPENDIX_ROWS_TOTAL
    result = []
    for system in sorted(tree):
        rules = []
        for rule_id in sorted(tree[system]):
            items = tree[system][rule_id]
            shown_items = [f for f in items if gov.outcome(f) != gov.PASS]
            take = max(0, min(APPENDIX_ROWS_PER_RULE, budget, len(shown_items)))
            budget -= take
            worst = max((f.severity for f in items), key=lambda s: s.rank)
            rules.append(
                AppendixRule(
                    rule_id,
                    printable(items[0].title),
                    worst.value,
                    Counter(gov.outcome(f) for f in items),
                    shown_items[:take],
                    len(shown_items) - take,
                )
            )
        result.append((printable(system), rules))
    return result


def _resource_types(data: ReportData) -> list[tuple[str, int]]:
    counts = Counter(r.type for r in data.resources)
    if not counts:
        unique = {f.resource_key: f for f in data.findings}.values()
        counts = Counter(f.resource_type for f in unique)
    return sorted(counts.items())


def localized(data: ReportData, lang: str) -> ReportData:
    """The report's findings with rule titles and remediations in the reader's language
    (where the policy gives them), so every section speaks it."""
    if lang != "fr" or not any(f.title_fr or f.remediation_fr for f in data.findings):
        return data
    findings = tuple(
        f.evolve(title=f.title_in(lang), remediation=f.remediation_in(lang)) for f in data.findings
    )
    return dataclasses.replace(data, findings=findings)


def build(data: ReportData, options: RenderOptions, lang: str) -> Committee:
    """Compute the whole committee report from one scan."""
    data = localized(data, lang)
    sla = sla_from_options(options)
    min_coverage = min_coverage_from_options(options)
    snapshot = gov.score_snapshot(data, sla, min_coverage)
    trend = _trend(data, snapshot, min_coverage)
    previous = trend[-2].index if len(trend) > 1 else None
    actions = gov.action_plan(data, sla)
    readers = [r.strip() for r in options.extra.get("readers", "").split(";") if r.strip()]
    return Committee(
        lang=lang,
        title=printable(options.title or ""),
        data=data,
        today=gov.as_of(data),
        opinion=gov.opinion(data.findings, data.scan.status, min_coverage),
        previous_index=previous,
        open=gov.open_by_severity(data.findings),
        systems=_systems(data, min_coverage),
        frameworks=_frameworks(data, lang),
        actions=actions,
        top_risks=actions[:TOP_RISKS],
        breaches=gov.sla_breaches(data, sla),
        acceptances=_acceptances(data, gov.as_of(data)),
        errors=_errors(data.findings),
        resource_types=_resource_types(data),
        trend=trend,
        appendix=_appendix(data),
        sla=sla,
        readers=readers,
        marking=printable(options.extra.get("marking", "")),
    )


def evidence(finding: Finding) -> str:
    """A finding's evidence for display (escaped, one line, shortened)."""
    return evidence_text(finding.evidence, 300)


def trend_chart(
    points: Sequence[TrendPoint], width: int = 640, height: int = 180
) -> dict[str, Any]:
    """Coordinates of the index line chart (numbers only: safe to put in SVG)."""
    pad_l, pad_r, pad_t, pad_b = 36, 12, 10, 28
    usable_w, usable_h = width - pad_l - pad_r, height - pad_t - pad_b
    step = usable_w / max(1, len(points) - 1)
    dots = []
    for i, point in enumerate(points):
        if point.index is None:
            continue
        x = pad_l + (i * step if len(points) > 1 else usable_w / 2)
        y = pad_t + usable_h * (1 - point.index / 5)
        dots.append(
            {"x": round(x, 1), "y": round(y, 1), "value": point.index, "label": f"#{point.scan_id}"}
        )
    ticks = [{"y": round(pad_t + usable_h * (1 - v / 5), 1), "value": v} for v in range(6)]
    labels = [
        {
            "x": round(pad_l + (i * step if len(points) > 1 else usable_w / 2), 1),
            "text": f"#{p.scan_id} {p.day[5:]}",
        }
        for i, p in enumerate(points)
    ]
    return {
        "width": width,
        "height": height,
        "dots": dots,
        "ticks": ticks,
        "labels": labels,
        "path": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "left": pad_l,
        "right": width - pad_r,
        "bottom": height - pad_b + 16,
    }


def days_between(start: date, end: date) -> int:
    """Whole days from ``start`` to ``end`` (negative when ``end`` is earlier)."""
    return (end - start).days


def add_days(day: date, days: int) -> date:
    """``day`` shifted by ``days``."""
    return day + timedelta(days=days)
