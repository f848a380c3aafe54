"""Governance figures computed from one :class:`~audit.reporting.ReportData`.

Every function here is pure: same report in, same figures out, no I/O. The committee
report, the terminal summary and the store's per-scan snapshot all use them, so a figure
means the same thing wherever it is shown.

Outcome of a finding
    ``pass``, ``skip`` and ``error`` keep their status. A ``fail`` whose lifecycle is
    ``accepted`` is *accepted* (a named owner took the risk until a date); a ``fail``
    whose acceptance lapsed (lifecycle ``expired``) is an ordinary open failure again.

Framework score
    A control is *passed* when at least one finding maps to it and every such finding
    passes or is accepted; *failed* when one of them fails; *not assessed* otherwise
    (no finding, only ``skip``, or an ``error`` without any failure).
    ``percent = 100 × passed / (passed + failed)``; not-assessed controls are counted
    apart and never in the percentage.

Coverage (per system and overall)
    Of the findings that applied (every status but ``skip``), the share that could be
    evaluated: ``coverage = 100 × (pass + fail + accepted) / (pass + fail + accepted +
    error)``, counted in findings whatever their severity and rounded down to 0.1 (a
    figure shown never reaches a threshold it missed). An ``error`` proves nothing either
    way: it is left out of the index and shows here as missing evidence.

Security index (0–5, per system and overall)
    Each finding weighs ``w`` by severity: critical 10, high 5, medium 2, low 1, info 0.
    With ``T`` the weight of the evaluated findings (those that pass, fail or are
    accepted), ``F`` of failures and ``A`` of accepted findings::

        index = 5 × (1 − (F + ½A) / T)

    An accepted risk still counts half against the system. An open critical failure
    caps the index at 1.9 (below the homologation threshold), an open high failure at
    3.9. Rounded to 0.1.

No index without evidence
    No index, no grade and no advised validity are given (per system and overall) when
    the scan did not complete (interrupted, failed or still running), when no rule
    applied, when nothing or too little was evaluated (coverage below the threshold:
    ``--min-coverage``, 90 % by default), or when the evaluated findings weigh nothing
    (``info`` only). The report says which, instead of an opinion. Framework scores are
    not grades: they count assessed controls only, next to the controls not assessed.

Grade
    A ≥ 4.5, B ≥ 4, C ≥ 3, D ≥ 2, E ≥ 1, F below 1.

Advised homologation validity (from the index)
    below 2: not advised (6 months at most, under an action plan); 2–3: 1 year;
    3–4: up to 2 years; 4–5: up to 3 years.

SLA
    A failing finding must be fixed within ``sla[severity]`` days of ``first_seen``
    (defaults critical 7, high 30, medium 90, low 180; info has none).

Priority (action plan)
    P1: critical severity, or high on a high/critical system. P2: other high, or
    medium on a high/critical system. P3: everything else.
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from audit.models import Finding, Lifecycle, Severity, Status, SystemInfo
from audit.reporting import RenderOptions, ReportData

if TYPE_CHECKING:  # the store imports nothing of governance; scores only need its façade
    from audit.store import Store

PASS, FAIL, ERROR, SKIP, ACCEPTED = "pass", "fail", "error", "skip", "accepted"

WEIGHTS: Mapping[Severity, int] = {
    Severity.CRITICAL: 10,
    Severity.HIGH: 5,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}
DEFAULT_SLA_DAYS: Mapping[Severity, int] = {
    Severity.CRITICAL: 7,
    Severity.HIGH: 30,
    Severity.MEDIUM: 90,
    Severity.LOW: 180,
}
CRITICALITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
EXPIRING_SOON_DAYS = 60
DEFAULT_MIN_COVERAGE = 90.0
"""Below this share of applicable rules evaluated (percent), no index is given."""
COMPLETE = "complete"


_STATUS_VALUE = {status: status.value for status in Status}
_FAIL_STATUS = Status.FAIL
_ACCEPTED_LIFECYCLE = Lifecycle.ACCEPTED


def outcome(finding: Finding) -> str:
    """The governance outcome of a finding (see the module docstring).

    Called millions of times on large scans: enum members are read from module
    constants rather than through the (slow) enum attribute lookup.
    """
    status = finding.status
    if status is _FAIL_STATUS and finding.lifecycle is _ACCEPTED_LIFECYCLE:
        return ACCEPTED
    return _STATUS_VALUE[status]


def as_of(data: ReportData) -> date:
    """The day the report speaks for: generation date, else the scan's start."""
    stamp = data.generated_at or data.scan.finished_at or data.scan.started_at
    return parse_day(stamp) or date.today()


def parse_day(stamp: str | None) -> date | None:
    """The date part of an ISO date or timestamp, or None when absent or malformed."""
    if not stamp:
        return None
    try:
        return date.fromisoformat(stamp[:10])
    except ValueError:
        return None


# --- index, grade, validity -------------------------------------------------------------


def security_index(findings: Iterable[Finding]) -> float | None:
    """The 0–5 index of the evaluated findings (formula in the module docstring).

    Errors and skips are left out: an unverified control is evidence of nothing, and
    :func:`opinion` decides whether enough was verified for the index to be shown.
    """
    total = against = 0.0
    worst_open = -1
    for finding in findings:
        result = outcome(finding)
        if result in (SKIP, ERROR):
            continue
        weight = WEIGHTS[finding.severity]
        total += weight
        if result == FAIL:
            against += weight
            worst_open = max(worst_open, finding.severity.rank)
        elif result == ACCEPTED:
            against += weight / 2
    if total == 0:
        return None
    index = 5 * (1 - against / total)
    if worst_open >= Severity.CRITICAL.rank:
        index = min(index, 1.9)
    elif worst_open >= Severity.HIGH.rank:
        index = min(index, 3.9)
    return round(index + 1e-9, 1)


@dataclass(frozen=True)
class IndexWorkings:
    """The index computed in the open, so a reader can redo it by hand.

    ``rows`` are ``(severity, weight, evaluated, failed, accepted)``; ``total``,
    ``against`` and ``raw`` are T, F + ½A and ``5 × (1 − (F + ½A) / T)`` of the module
    docstring; ``cap`` is the ceiling an open critical or high failure sets (None: none).
    """

    rows: tuple[tuple[Severity, int, int, int, int], ...]
    total: float
    failed: float
    accepted: float
    raw: float | None
    cap: float | None

    @property
    def against(self) -> float:
        """F + ½A: the weight counted against the estate."""
        return self.failed + self.accepted / 2

    @property
    def index(self) -> float | None:
        """The index these workings give, as :func:`security_index` does."""
        if self.raw is None:
            return None
        capped = self.raw if self.cap is None else min(self.raw, self.cap)
        return round(capped + 1e-9, 1)


def index_workings(findings: Iterable[Finding]) -> IndexWorkings:
    """The terms of :func:`security_index` for ``findings``, severity by severity."""
    counts: dict[Severity, Counter[str]] = {s: Counter() for s in Severity}
    for finding in findings:
        result = outcome(finding)
        if result not in (SKIP, ERROR):
            counts[finding.severity][result] += 1
    rows = tuple((s, WEIGHTS[s], sum(c.values()), c[FAIL], c[ACCEPTED]) for s, c in counts.items())
    total = float(sum(w * n for _, w, n, _, _ in rows))
    failed = float(sum(w * f for _, w, _, f, _ in rows))
    accepted = float(sum(w * a for _, w, _, _, a in rows))
    raw = 5 * (1 - (failed + accepted / 2) / total) if total else None
    cap = 1.9 if counts[Severity.CRITICAL][FAIL] else 3.9 if counts[Severity.HIGH][FAIL] else None
    return IndexWorkings(rows, total, failed, accepted, raw, cap)


def grade(index: float | None) -> str:
    """Letter grade A–F of an index; ``-`` when there is no index."""
    if index is None:
        return "-"
    for letter, floor in (("A", 4.5), ("B", 4.0), ("C", 3.0), ("D", 2.0), ("E", 1.0)):
        if index >= floor:
            return letter
    return "F"


@dataclass(frozen=True)
class Validity:
    """The homologation validity an index advises: ``months`` at most, or not advised."""

    advised: bool
    months: int
    key: str  # message id for the renderers: not_advised, 1y, 2y, 3y, unknown


def advised_validity(index: float | None) -> Validity:
    """Map an index to the validity advice of the module docstring."""
    if index is None:
        return Validity(False, 0, "unknown")
    if index < 2:
        return Validity(False, 6, "not_advised")
    if index < 3:
        return Validity(True, 12, "1y")
    if index < 4:
        return Validity(True, 24, "2y")
    return Validity(True, 36, "3y")


@dataclass(frozen=True)
class Coverage:
    """How many applicable findings could be evaluated: the evidence behind an index."""

    evaluated: int  # pass, fail or accepted
    applicable: int  # evaluated, plus errors (skips did not apply)

    @property
    def percent(self) -> float | None:
        """Evaluated share in percent, rounded down to 0.1; None when nothing applied.

        Rounded down so that 89.96 % never reads as the 90 % it missed.
        """
        if not self.applicable:
            return None
        return math.floor(1000 * self.evaluated / self.applicable) / 10

    def meets(self, min_percent: float) -> bool:
        """True when something was evaluated and the share reaches ``min_percent``."""
        return self.evaluated > 0 and 100 * self.evaluated >= min_percent * self.applicable


def coverage(findings: Iterable[Finding]) -> Coverage:
    """Evaluated and applicable findings (definitions in the module docstring)."""
    counts = Counter(outcome(f) for f in findings)
    evaluated = counts[PASS] + counts[FAIL] + counts[ACCEPTED]
    return Coverage(evaluated, evaluated + counts[ERROR])


@dataclass(frozen=True)
class Opinion:
    """What a report may state about a set of findings, or why it states nothing.

    ``withheld`` names the reason there is no index: ``incomplete_scan``,
    ``nothing_applicable``, ``low_coverage`` or ``nothing_weighed`` (None: the index,
    grade and validity stand).
    """

    index: float | None
    grade: str
    validity: Validity
    coverage: Coverage
    min_coverage: float
    withheld: str | None


def withheld_reason(status: str, cover: Coverage, min_coverage: float) -> str | None:
    """Why no index may be given for this evidence, or None when one may."""
    if status != COMPLETE:
        return "incomplete_scan"
    if cover.applicable == 0:
        return "nothing_applicable"
    if not cover.meets(min_coverage):
        return "low_coverage"
    return None


def opinion(
    findings: Iterable[Finding],
    status: str = COMPLETE,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> Opinion:
    """The index, grade and validity of ``findings``, unless the evidence is too thin.

    ``status`` is the scan's: an interrupted scan says nothing of what it did not reach.
    """
    items = findings if isinstance(findings, Sequence) else tuple(findings)
    cover = coverage(items)
    reason = withheld_reason(status, cover, min_coverage)
    index = security_index(items) if reason is None else None
    if reason is None and index is None:
        reason = "nothing_weighed"
    return Opinion(index, grade(index), advised_validity(index), cover, min_coverage, reason)


def findings_by_system(data: ReportData) -> dict[str, list[Finding]]:
    """Findings grouped by system, every declared system present, sorted by name."""
    by_system: dict[str, list[Finding]] = {s.name: [] for s in data.systems}
    for finding in data.findings:
        by_system.setdefault(finding.system, []).append(finding)
    return dict(sorted(by_system.items()))


def system_opinions(
    data: ReportData, min_coverage: float = DEFAULT_MIN_COVERAGE
) -> dict[str, Opinion]:
    """The opinion on every system that has findings or is declared, by name."""
    status = data.scan.status
    return {
        name: opinion(items, status, min_coverage)
        for name, items in findings_by_system(data).items()
    }


def system_indices(
    data: ReportData, min_coverage: float = DEFAULT_MIN_COVERAGE
) -> dict[str, float | None]:
    """The index of every system (None where it is withheld), by name."""
    return {name: o.index for name, o in system_opinions(data, min_coverage).items()}


# --- frameworks -----------------------------------------------------------------------


@dataclass(frozen=True)
class ControlResult:
    """One control's verdict and the findings behind it."""

    framework: str
    control_id: str
    state: str  # passed | failed | not_assessed
    failed: int = 0
    passed: int = 0
    errors: int = 0
    worst: Severity | None = None


@dataclass(frozen=True)
class FrameworkScore:
    """Percentages of one framework, for one system or the whole scan."""

    framework: str
    passed: int
    failed: int
    not_assessed: int
    controls: tuple[ControlResult, ...] = field(default=(), repr=False)

    @property
    def assessed(self) -> int:
        """Controls with a verdict."""
        return self.passed + self.failed

    @property
    def percent(self) -> float | None:
        """Share of assessed controls that passed, or None when none was assessed."""
        return round(100 * self.passed / self.assessed, 1) if self.assessed else None


@functools.cache
def _canonical(framework: str, control_id: str) -> str:
    from audit.frameworks import canonical_id  # pydantic: only when controls are scored

    return canonical_id(framework, control_id)


_LAST_GROUPING: list[tuple[tuple[Finding, ...], dict[tuple[str, str], list[Finding]]]] = []


def findings_by_control(findings: Iterable[Finding]) -> dict[tuple[str, str], list[Finding]]:
    """Group findings under every (framework, control id) they map to.

    A report asks for this grouping of the same (immutable) tuple of findings several
    times; the last result is kept so large scans are grouped once.
    """
    if isinstance(findings, tuple) and _LAST_GROUPING and _LAST_GROUPING[0][0] is findings:
        return _LAST_GROUPING[0][1]
    grouped = _group_by_control(findings)
    if isinstance(findings, tuple):
        _LAST_GROUPING[:] = [(findings, grouped)]
    return grouped


def _group_by_control(findings: Iterable[Finding]) -> dict[tuple[str, str], list[Finding]]:
    grouped: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        for framework, ids in finding.controls.items():
            for control_id in ids:
                grouped[(framework, _canonical(framework, control_id))].append(finding)
    return dict(grouped)


def control_result(framework: str, control_id: str, findings: Sequence[Finding]) -> ControlResult:
    """The verdict on one control from the findings mapped to it."""
    counts = Counter(outcome(f) for f in findings)
    failing = [f.severity for f in findings if outcome(f) == FAIL]
    worst = max(failing, key=lambda s: s.rank) if failing else None
    passed = counts[PASS] + counts[ACCEPTED]
    if failing:
        state = "failed"
    elif passed and not counts[ERROR]:
        state = "passed"
    else:
        state = "not_assessed"
    return ControlResult(framework, control_id, state, len(failing), passed, counts[ERROR], worst)


def framework_scores(
    findings: Iterable[Finding], frameworks: Sequence[str] | None = None
) -> dict[str, FrameworkScore]:
    """Per framework, the passed/failed/not-assessed controls of its whole catalogue.

    Controls are taken from the catalogue when it ships (so unmapped controls count as
    not assessed), otherwise from the ids the findings cite.
    """
    from audit.frameworks import load_catalogues

    catalogues = load_catalogues()
    grouped = findings_by_control(findings)
    cited = sorted({fw for fw, _ in grouped})
    scores: dict[str, FrameworkScore] = {}
    for framework in frameworks if frameworks is not None else cited:
        catalogue = catalogues.get(framework)
        ids = (
            [c.id for c in catalogue.controls]
            if catalogue
            else sorted(cid for fw, cid in grouped if fw == framework)
        )
        results = tuple(
            control_result(framework, cid, grouped.get((framework, cid), [])) for cid in ids
        )
        states = Counter(r.state for r in results)
        scores[framework] = FrameworkScore(
            framework, states["passed"], states["failed"], states["not_assessed"], results
        )
    return scores


def heatmap(findings: Iterable[Finding], framework: str) -> dict[str, Counter[Severity]]:
    """Failing findings of ``framework`` counted by control family and severity."""
    from audit.frameworks import get_framework

    catalogue = get_framework(framework)
    table: dict[str, Counter[Severity]] = defaultdict(Counter)
    for (fw, control_id), items in findings_by_control(findings).items():
        if fw != framework:
            continue
        control = catalogue.control(control_id) if catalogue else None
        family = catalogue.family_of(control) if catalogue and control else control_id
        for finding in items:
            if outcome(finding) == FAIL:
                table[family][finding.severity] += 1
    return dict(sorted(table.items(), key=lambda kv: _natural(kv[0])))


_ROMAN = {"I": 1, "V": 5, "X": 10}  # families run I–X; L, C, D are letters elsewhere


def roman_value(text: str) -> int | None:
    """The number a Roman numeral (I–XXXIX) writes, or None when ``text`` is not one.

    ANSSI's hygiene guide numbers its families I to X: sorted as text, IX and X would
    come before V.
    """
    if not text or any(ch not in _ROMAN for ch in text):
        return None
    total = 0
    for ch, nxt in zip(text, [*text[1:], ""], strict=True):
        value = _ROMAN[ch]
        total += -value if nxt and _ROMAN[nxt] > value else value
    return total


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts 2 before 10, A.5 before A.10 and IV before IX before X."""
    parts = text.replace("-", ".").split(".")
    return tuple(_natural_part(p) for p in parts)


def _natural_part(part: str) -> tuple[int, int | str]:
    if part.isdigit():
        return (0, int(part))
    roman = roman_value(part)
    return (0, roman) if roman is not None else (1, part)


# --- SLA and action plan ----------------------------------------------------------------


def sla_days(overrides: Mapping[str, int] | None = None) -> dict[Severity, int]:
    """The SLA table: defaults, with ``overrides`` keyed by severity name."""
    table = dict(DEFAULT_SLA_DAYS)
    for name, days in (overrides or {}).items():
        table[Severity(name)] = int(days)
    return table


def due_date(finding: Finding, sla: Mapping[Severity, int]) -> date | None:
    """When a failing finding must be fixed: ``first_seen`` + SLA (None: no SLA)."""
    seen = parse_day(finding.first_seen)
    days = sla.get(finding.severity)
    if seen is None or days is None:
        return None
    return seen + timedelta(days=days)


def sla_breaches(data: ReportData, sla: Mapping[Severity, int]) -> list[tuple[Finding, date]]:
    """Open failures past their due date, most overdue first."""
    today = as_of(data)
    late = []
    for finding in data.findings:
        due = due_date(finding, sla) if outcome(finding) == FAIL else None
        if due is not None and due < today:
            late.append((finding, due))
    return sorted(late, key=lambda pair: (pair[1], -pair[0].severity.rank))


def priority(severity: Severity, criticality: str) -> str:
    """P1–P3 from severity × system criticality (table in the module docstring)."""
    important = CRITICALITY_RANK.get(criticality, 1) >= CRITICALITY_RANK["high"]
    if severity is Severity.CRITICAL or (severity is Severity.HIGH and important):
        return "P1"
    if severity is Severity.HIGH or (severity is Severity.MEDIUM and important):
        return "P2"
    return "P3"


@dataclass(frozen=True)
class Action:
    """One failing rule, grouped across the resources it fails on."""

    rule_id: str
    title: str
    severity: Severity
    priority: str
    owner: str
    systems: tuple[str, ...]
    resources: int
    first_seen: date | None
    due: date | None
    status: str  # overdue | reopened | open | new
    remediation: str


def systems_by_name(data: ReportData) -> dict[str, SystemInfo]:
    """Declared systems by name (undeclared ones get a default entry when asked)."""
    return {s.name: s for s in data.systems}


def _status_of(items: Sequence[Finding], due: date | None, today: date) -> str:
    if due is not None and due < today:
        return "overdue"
    lifecycles = {f.lifecycle for f in items}
    if lifecycles & {Lifecycle.REOPENED, Lifecycle.EXPIRED}:
        return "reopened"
    if lifecycles <= {Lifecycle.NEW, None}:
        return "new"
    return "open"


def _action(
    rule_id: str, items: Sequence[Finding], data: ReportData, sla: Mapping[Severity, int]
) -> Action:
    systems = systems_by_name(data)
    names = tuple(sorted({f.system for f in items}))
    infos = [systems.get(n, SystemInfo(n)) for n in names]
    criticality = max((i.criticality for i in infos), key=lambda c: CRITICALITY_RANK.get(c, 1))
    severity = max((f.severity for f in items), key=lambda s: s.rank)
    owners = sorted({i.owner for i in infos if i.owner})
    dues = [d for d in (due_date(f, sla) for f in items) if d is not None]
    seen = [d for d in (parse_day(f.first_seen) for f in items) if d is not None]
    due = min(dues) if dues else None
    return Action(
        rule_id=rule_id,
        title=items[0].title,
        severity=severity,
        priority=priority(severity, criticality),
        owner=", ".join(owners),
        systems=names,
        resources=len({f.resource_key for f in items}),
        first_seen=min(seen) if seen else None,
        due=due,
        status=_status_of(items, due, as_of(data)),
        remediation=items[0].remediation,
    )


def action_plan(data: ReportData, sla: Mapping[Severity, int] | None = None) -> list[Action]:
    """Every failing rule with owner, priority, due date and status, most urgent first."""
    table = sla if sla is not None else sla_days()
    failing: dict[str, list[Finding]] = defaultdict(list)
    for finding in data.findings:
        if outcome(finding) == FAIL:
            failing[finding.rule_id].append(finding)
    actions = [_action(rule_id, items, data, table) for rule_id, items in failing.items()]
    far = date.max
    return sorted(
        actions, key=lambda a: (a.priority, -a.severity.rank, a.due or far, -a.resources, a.rule_id)
    )


# --- counts and snapshot ----------------------------------------------------------------


def open_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    """Open failures (not accepted) per severity name, every severity present."""
    counts = Counter(f.severity.value for f in findings if outcome(f) == FAIL)
    return {s.value: counts.get(s.value, 0) for s in Severity}


def lifecycle_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Findings per lifecycle state (new, resolved, reopened, …)."""
    counts = Counter(f.lifecycle.value for f in findings if f.lifecycle is not None)
    return {state.value: counts.get(state.value, 0) for state in Lifecycle}


Snapshot = dict[str, int | float | None]


def score_snapshot(
    data: ReportData,
    sla: Mapping[Severity, int] | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> Snapshot:
    """The figures the store keeps per scan so trends never re-read old findings.

    Flat and JSON-safe: ``index`` (None when withheld at ``min_coverage``),
    ``coverage`` (percent), ``open_<severity>``, lifecycle counts, ``sla_breaches``,
    outcome counts and ``fw_<framework>`` percentages.
    """
    table = sla if sla is not None else sla_days()
    verdict = opinion(data.findings, data.scan.status, min_coverage)
    snapshot: Snapshot = {"index": verdict.index, "coverage": verdict.coverage.percent}
    snapshot |= {f"open_{k}": v for k, v in open_by_severity(data.findings).items()}
    snapshot |= lifecycle_counts(data.findings)
    snapshot["sla_breaches"] = len(sla_breaches(data, table))
    outcomes = Counter(outcome(f) for f in data.findings)
    snapshot |= {f"outcome_{k}": outcomes.get(k, 0) for k in (PASS, FAIL, ERROR, SKIP, ACCEPTED)}
    for name, score in framework_scores(data.findings).items():
        snapshot[f"fw_{name}"] = score.percent
    return snapshot


def historic_index(counts: Mapping[str, object], status: str, min_coverage: float) -> float | None:
    """The index an earlier scan recorded, withheld by today's rule.

    Snapshots written before coverage was recorded carry no ``coverage``; their index
    stands unless their scan did not complete.
    """
    index, cover = counts.get("index"), counts.get("coverage")
    if not isinstance(index, int | float) or status != COMPLETE:
        return None
    if isinstance(cover, int | float) and cover < min_coverage:
        return None
    return float(index)


def store_scores(store: Store, scan_id: int, tool_version: str) -> None:
    """Persist the scan's score snapshot, so trends never re-read old findings."""
    data = store.load_report(scan_id, tool_version=tool_version, with_resources=False)
    store.set_scores(scan_id, score_snapshot(data))


def min_coverage_from_options(options: RenderOptions) -> float:
    """The coverage threshold (percent) below which no index is given.

    From ``min_coverage`` in the render options (``--min-coverage``), else the default;
    a value outside 0–100 or not a number is ignored rather than trusted.
    """
    raw = options.extra.get("min_coverage", "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_MIN_COVERAGE
    return value if 0 <= value <= 100 else DEFAULT_MIN_COVERAGE
