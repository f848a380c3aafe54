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
from audit.governance import min_coverage_from_options
from audit.models import Acceptance, Finding, ScanSummary, Severity, SystemInfo
from audit.reporting import RenderOptions, ReportData
from reports import rulebook, twins, wording
from reports._text import evidence_text, one_line, printable, shorten

SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
APPENDIX_ROWS_PER_RULE = 25
APPENDIX_ROWS_TOTAL = 3000
TOP_RISKS = 5
PLAN_NAMES = 2
"""Resources named on an action-plan line; the others are counted, and listed in the annex."""

PALETTE: Mapping[str, str] = {
    "pass": "#b9e0c2",
    "fail": "#7f1d1d",
    "na": "#ffffff",
    "band0": "#7f1d1d",
    "band1": "#d9822b",
    "band2": "#a9d3a0",
    "band3": "#eef7ec",
    "critical": "#7f1d1d",
    "high": "#c2410c",
    "medium": "#f0b35a",
    "low": "#fbe9cc",
}
"""Fills that must stay apart on a black-and-white printer: pass and fail, each gauge band
and the next, each severity and the next differ in lightness (tests/reports check the CIE
L* gap), and bars also carry a hatch or a label, never colour alone."""

INK_ON: Mapping[str, str] = {
    k: "#ffffff" if k in ("fail", "band0", "critical", "high") else "#1b2333" for k in PALETTE
}
"""Text colour readable on each fill."""

FRAMEWORK_SHORT: Mapping[str, str] = {
    "anssi-hygiene": "ANSSI hygiene",
    "anssi-tls": "ANSSI TLS",
    "nis2": "NIS2 21(2)",
    "iso27001": "ISO 27001:2022",
    "cis-v8": "CIS v8",
    "cis-aws": "CIS AWS",
    "rgs": "RGS B1",
}
"""How a finding's control ids are prefixed in the annex (a catalog message each)."""
FRAMEWORK_ORDER = ("anssi-hygiene", "anssi-tls", "nis2", "iso27001", "cis-v8", "cis-aws", "rgs")


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
    heatmap: list[tuple[str, list[HeatCell]]]
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
class EvidenceRow:
    """One finding of the annex: what it says in words, and the raw value beside it."""

    finding: Finding
    said: wording.Said
    first_seen: date | None
    accepted: bool
    command: str = ""  # the remediation's command lines filled with this resource


@dataclass(frozen=True)
class AppendixRule:
    """One rule's sheet in the annex: where it comes from, what to type, its evidence."""

    rule_id: str
    title: str
    severity: str
    counts: Mapping[str, int]
    rows: list[EvidenceRow]
    hidden: int
    source: rulebook.RuleSource
    controls: list[tuple[str, str]]  # (framework id, ids joined)
    advice: str
    commands: str
    first_seen: date | None


@dataclass(frozen=True)
class PlanLine:
    """One action of the plan as the committee reads it: no command, resources named."""

    action: gov.Action
    names: list[str]
    more: int
    advice: str
    rule_ids: tuple[str, ...] = ()  # the action's rule and its twins (``same_as``)
    sentence: str = ""  # the rule's message on its first failing resource


@dataclass(frozen=True)
class HeatCell:
    """A heatmap cell: the count, shaded by the severity of its column when not zero."""

    count: int
    severity: str


@dataclass(frozen=True)
class Account:
    """A cloud account the scan read, and how it was reached (never a secret)."""

    account_id: str
    partition: str
    regions: tuple[str, ...]
    profile: str
    role: str
    endpoint: str
    caller_arn: str = ""  # who STS says made the calls: a name, never a secret


@dataclass(frozen=True)
class Cover:
    """What was audited and how, for the cover page."""

    targets: list[tuple[str, int, list[str]]]  # scheme, count, first few
    accounts: list[Account]
    policies: list[tuple[str, str]]  # name, version


@dataclass(frozen=True)
class Unfinished:
    """A scan that did not complete: its status and the targets it did not reach."""

    status: str
    unreached: list[str] | None  # None: the planned targets are not known


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
    appendix: list[AppendixRule]
    sla: Mapping[Severity, int]
    readers: list[str]
    marking: str
    plan: list[PlanLine] = field(default_factory=list)
    workings: gov.IndexWorkings | None = None
    cover: Cover = field(default_factory=lambda: Cover([], [], []))
    unfinished: Unfinished | None = None
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
        """up, down or flat against the previous scan's index; first for a first scan;
        unknown when either has none (a missing index is not a stable one)."""
        if self.is_first_scan:
            return "first"
        if self.index is None or self.previous_index is None:
            return "unknown"
        delta = self.index - self.previous_index
        return "up" if delta >= 0.1 else "down" if delta <= -0.1 else "flat"

    @property
    def is_first_scan(self) -> bool:
        """No earlier scan in the store: there is nothing to compare with."""
        return len(self.trend) < 2

    @property
    def movement(self) -> list[tuple[str, int, int]]:
        """Open critical and high failures, previous scan → this one.

        The index is capped while a critical stays open, so it can read "stable" while
        criticals fall from 10 to 6: the counts say what the index cannot.
        """
        if self.is_first_scan:
            return []
        before, now = self.trend[-2].open, self.trend[-1].open
        return [(k, before.get(k, 0), now.get(k, 0)) for k in ("critical", "high")]

    @property
    def palette(self) -> Mapping[str, str]:
        """The print-safe fills (see :data:`PALETTE`)."""
        return PALETTE

    @property
    def ink(self) -> Mapping[str, str]:
        """The text colour for each fill."""
        return INK_ON

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
                [HeatCell(counts.get(s, 0), s.value) for s in SEVERITIES],
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


def _appendix(
    data: ReportData, lang: str, order: Sequence[str], sources: Mapping[str, rulebook.RuleSource]
) -> list[AppendixRule]:
    """One sheet per rule that did not simply pass, in action-plan order; rows capped so
    100k findings stay fast (the exports hold the rest)."""
    by_rule: dict[str, list[Finding]] = defaultdict(list)
    for finding in data.findings:
        by_rule[finding.rule_id].append(finding)
    facts = {r.key: r.facts for r in data.resources}
    rank = {rule_id: i for i, rule_id in enumerate(order)}
    wanted = [r for r, items in by_rule.items() if any(_shown(f) for f in items)]
    budget = APPENDIX_ROWS_TOTAL
    sheets = []
    for rule_id in sorted(wanted, key=lambda r: (rank.get(r, len(rank)), r)):
        shown = [f for f in by_rule[rule_id] if _shown(f)]
        take = max(0, min(APPENDIX_ROWS_PER_RULE, budget, len(shown)))
        budget -= take
        sheets.append(_sheet(by_rule[rule_id], shown, take, lang, sources[rule_id], facts))
    return sheets


def _shown(finding: Finding) -> bool:
    """Rows of the annex: failures (accepted or not) and checks that could not be made."""
    return gov.outcome(finding) in (gov.FAIL, gov.ACCEPTED, gov.ERROR)


def _sheet(
    items: Sequence[Finding],
    shown: Sequence[Finding],
    take: int,
    lang: str,
    source: rulebook.RuleSource,
    facts: Mapping[str, Mapping[str, Any]],
) -> AppendixRule:
    first = items[0]
    advice, commands = wording.split_remediation(first.remediation)
    ordered = sorted(shown, key=lambda f: (f.system, f.resource_key))[:take]
    filled = [
        wording.filled_commands(commands, facts.get(f.resource_key))
        if gov.outcome(f) != gov.ERROR  # a check not made is not a fix to type
        else ""
        for f in ordered
    ]
    rows = [_row(f, lang, command) for f, command in zip(ordered, filled, strict=True)]
    seen = [d for d in (gov.parse_day(f.first_seen) for f in shown) if d is not None]
    return AppendixRule(
        first.rule_id,
        printable(first.title),
        max((f.severity for f in items), key=lambda s: s.rank).value,
        Counter(gov.outcome(f) for f in items),
        rows,
        len(shown) - take,
        source,
        control_ids(first.controls),
        wording.generic(advice),
        wording.generic(commands),
        min(seen) if seen else None,
    )


def _row(finding: Finding, lang: str, command: str = "") -> EvidenceRow:
    return EvidenceRow(
        finding,
        wording.said(finding, lang),
        gov.parse_day(finding.first_seen),
        gov.outcome(finding) == gov.ACCEPTED,
        printable(command),
    )


def control_ids(controls: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """``(framework, "id, id")`` in a fixed framework order; NIS2 ids as the directive
    writes them (``21.2.b`` → ``21(2)(b)``)."""

    def rank(fw: str) -> int:
        return FRAMEWORK_ORDER.index(fw) if fw in FRAMEWORK_ORDER else len(FRAMEWORK_ORDER)

    return [
        (fw, ", ".join(_nis2(i) if fw == "nis2" else i for i in ids))
        for fw, ids in sorted(controls.items(), key=lambda kv: (rank(kv[0]), kv[0]))
        if ids
    ]


def _nis2(control_id: str) -> str:
    head, *rest = control_id.split(".")
    return head + "".join(f"({part})" for part in rest)


def short_name(resource_key: str) -> str:
    """A resource as a person names it: ``sg-0ab1`` for its ARN, ``host:443`` for a URI."""
    key = resource_key.split("://", 1)[-1]
    if resource_key.startswith("arn:"):
        key = resource_key.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    return shorten(one_line(key), 28)


def _plan(
    data: ReportData, actions: Sequence[gov.Action], grouped: twins.Grouped, lang: str
) -> list[PlanLine]:
    """The action plan without commands: each action names a few of its resources and
    every rule id it stands for (its twins fail on the same resources)."""
    keys: dict[str, set[str]] = defaultdict(set)
    first: dict[str, Finding] = {}
    for finding in data.findings:
        if gov.outcome(finding) == gov.FAIL:
            keys[finding.rule_id].add(finding.resource_key)
            first.setdefault(finding.rule_id, finding)
    facts = {r.key: r.facts for r in data.resources}
    lines = []
    for action in actions:
        names = sorted({short_name(k) for k in keys[action.rule_id]})
        advice, _ = wording.split_remediation(action.remediation)
        advice = wording.generic(advice)
        more = len(names) - PLAN_NAMES
        ids = grouped.ids_of(action.rule_id)
        example = first[action.rule_id]
        said = rulebook.sentence(example, facts.get(example.resource_key), lang)
        lines.append(PlanLine(action, names[:PLAN_NAMES], more, advice, ids, printable(said)))
    return lines


def _cover(data: ReportData) -> Cover:
    """Targets by kind, cloud accounts with the identity used, packs with versions."""
    targets = sorted({f.target for f in data.findings} | {r.target for r in data.resources})
    by_scheme: dict[str, list[str]] = defaultdict(list)
    for target in targets:
        by_scheme[target.split("://", 1)[0] if "://" in target else "?"].append(target)
    kinds = [(k, len(v), [printable(t) for t in v[:4]]) for k, v in sorted(by_scheme.items())]
    accounts = [_account(r.facts, r.target) for r in data.resources if r.type == "aws.account"]
    packs = sorted(rulebook.versions(data.scan.policies).items())
    return Cover(kinds, accounts, packs)


def _account(facts: Mapping[str, Any], target: str) -> Account:
    """An AWS account from its facts, and the profile or role from its target URI."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(target)
    query = parse_qs(parts.query)
    regions = facts.get("regions") or query.get("regions", [""])[0].split(",")
    return Account(
        printable(facts.get("account_id", "")),
        printable(facts.get("partition", "aws")),
        tuple(printable(r) for r in regions if r),
        printable(parts.hostname or ""),
        printable(query.get("role", [""])[0]),
        printable(query.get("endpoint", [""])[0]),
        printable(facts.get("caller_arn") or ""),
    )


def _unfinished(data: ReportData, options: RenderOptions) -> Unfinished | None:
    """The banner of a scan that did not complete; ``unreached`` from the render options
    (the CLI reads the planned targets from the store), one target a line."""
    if data.scan.status == gov.COMPLETE:
        return None
    raw = options.extra.get("unreached")
    unreached = None if raw is None else [printable(t) for t in raw.splitlines() if t.strip()]
    return Unfinished(data.scan.status, unreached)


def _resource_types(data: ReportData) -> list[tuple[str, int]]:
    counts = Counter(r.type for r in data.resources)
    if not counts:
        unique = {f.resource_key: f for f in data.findings}.values()
        counts = Counter(f.resource_type for f in unique)
    return sorted(counts.items())


def localized(data: ReportData, lang: str) -> ReportData:
    """The report's findings with rule titles and remediations in the reader's language
    (where the policy gives them), so every section speaks it."""
    if not any(lang in f.translations for f in data.findings):
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
    grouped = twins.group(data.findings, twins.declared_twins())
    risks = dataclasses.replace(data, findings=grouped.findings)
    actions = gov.action_plan(risks, sla)
    plan = _plan(data, actions, grouped, lang)
    readers = [r.strip() for r in options.extra.get("readers", "").split(";") if r.strip()]
    sources = rulebook.sources({(f.rule_id, f.policy) for f in data.findings}, data.scan.policies)
    return Committee(
        lang=lang,
        title=printable(options.title or ""),
        data=data,
        today=gov.as_of(data),
        opinion=gov.opinion(data.findings, data.scan.status, min_coverage),
        previous_index=previous,
        open=gov.open_by_severity(grouped.findings),
        systems=_systems(data, min_coverage),
        frameworks=_frameworks(data, lang),
        actions=actions,
        top_risks=actions[:TOP_RISKS],
        breaches=gov.sla_breaches(data, sla),
        acceptances=_acceptances(data, gov.as_of(data)),
        errors=_errors(data.findings),
        resource_types=_resource_types(data),
        trend=trend,
        appendix=_appendix(data, lang, [i for line in plan for i in line.rule_ids], sources),
        sla=sla,
        readers=readers,
        marking=one_line(options.extra.get("marking", "")),
        plan=plan,
        workings=gov.index_workings(data.findings),
        cover=_cover(data),
        unfinished=_unfinished(data, options),
    )


def evidence(finding: Finding) -> str:
    """A finding's evidence for display (escaped, one line, shortened)."""
    return evidence_text(finding.evidence, 300)


def trend_chart(
    points: Sequence[TrendPoint], width: int = 640, height: int = 150
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
            "scan": p.scan_id,
            "day": p.day,
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
