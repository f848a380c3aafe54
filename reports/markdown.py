"""Markdown: a short summary to post as a merge-request or pull-request comment.

Index and grade (or why there is none), coverage, open failures by severity, then the
most urgent actions (at most 15 lines) and the checks that could not run. Untrusted
strings are escaped for Markdown (and HTML, since forges render inline HTML) and kept on
one line.
"""

from __future__ import annotations

import html
import re

from audit import governance as gov
from audit.governance import min_coverage_from_options
from audit.reporting import Renderer, RenderOptions, ReportData
from reports._text import one_line, shorten
from reports.i18n import format_percent

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")
MAX_ACTIONS = 15
SCAN_STATUS_FR = {
    "interrupted": "interrompu",
    "failed": "arrêté sur une erreur",
    "running": "en cours",
}
WORDS = {
    "fr": {
        "title": "Rempart — scan",
        "index": "Indice",
        "grade": "note",
        "coverage": "Couverture",
        "verified": "{evaluated} contrôles vérifiés sur {applicable} applicables",
        "open": "Échecs ouverts",
        "actions": "Actions prioritaires",
        "errors": "Contrôles non évalués",
        "none": "Aucun échec ouvert.",
        "rule": "Règle",
        "sev": "Gravité",
        "res": "Ressources",
        "due": "Échéance",
        "more": "autres actions",
        "incomplete_scan": "Pas d'indice : le scan ne s'est pas terminé (statut : {status}) ; "
        "ce qu'il n'a pas atteint reste inconnu.",
        "nothing_applicable": "Pas d'indice : aucune règle ne s'appliquait aux ressources "
        "observées.",
        "low_coverage": "Pas d'indice : {cov} des contrôles applicables ont pu être vérifiés "
        "(seuil {min}).",
        "nothing_weighed": "Pas d'indice : seules des règles informatives ont pu être vérifiées.",
    },
    "en": {
        "title": "Rempart — scan",
        "index": "Index",
        "grade": "grade",
        "coverage": "Coverage",
        "verified": "{evaluated} of {applicable} applicable checks verified",
        "open": "Open failures",
        "actions": "Priority actions",
        "errors": "Checks not evaluated",
        "none": "No open failure.",
        "rule": "Rule",
        "sev": "Severity",
        "res": "Resources",
        "due": "Due",
        "more": "more actions",
        "incomplete_scan": "No index: the scan did not complete (status: {status}), so what "
        "it did not reach is unknown.",
        "nothing_applicable": "No index: no rule applied to the resources observed.",
        "low_coverage": "No index: {cov} of the applicable checks could be verified "
        "(threshold {min}).",
        "nothing_weighed": "No index: only informational rules could be verified.",
    },
}


def md(text: object, limit: int = 120) -> str:
    """Untrusted text made inert in Markdown: one line, HTML-escaped, specials escaped."""
    flat = shorten(one_line(text), limit)
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _header(data: ReportData, w: dict[str, str], lang: str, min_coverage: float) -> list[str]:
    verdict = gov.opinion(data.findings, data.scan.status, min_coverage)
    shown = (
        "—"
        if verdict.index is None
        else f"{verdict.index:.1f}/5 ({w['grade']} **{verdict.grade}**)"
    )
    counts = gov.open_by_severity(data.findings)
    line = " · ".join(f"{k} {v}" for k, v in counts.items() if k != "info")
    cover = verdict.coverage
    verified = w["verified"].format(evaluated=cover.evaluated, applicable=cover.applicable)
    lines = [
        f"### {w['title']} #{data.scan.id}",
        "",
        f"**{w['index']}** {shown} · "
        f"**{w['coverage']}** {format_percent(cover.percent, lang)} ({verified}) · "
        f"**{w['open']}**: {line}",
        "",
    ]
    if verdict.withheld:
        lines += [f"> {_no_index(verdict, data.scan.status, w, lang)}", ""]
    return lines


def _no_index(verdict: gov.Opinion, status: str, w: dict[str, str], lang: str) -> str:
    """Why the summary gives no index, in the reader's language."""
    return w[verdict.withheld or "nothing_weighed"].format(
        status=md(SCAN_STATUS_FR.get(status, status) if lang == "fr" else status, 40),
        cov=format_percent(verdict.coverage.percent or 0, lang),
        min=format_percent(verdict.min_coverage, lang),
    )


def _actions(data: ReportData, w: dict[str, str]) -> list[str]:
    plan = gov.action_plan(data)
    if not plan:
        return [w["none"], ""]
    lines = [
        f"**{w['actions']}**",
        "",
        f"| | {w['rule']} | {w['sev']} | {w['res']} | {w['due']} |",
        "|---|---|---|---|---|",
    ]
    for action in plan[:MAX_ACTIONS]:
        due = action.due.isoformat() if action.due else "—"
        lines.append(
            f"| {action.priority} | `{action.rule_id}` {md(action.title)} | "
            f"{action.severity.value} | {action.resources} | {due} |"
        )
    if len(plan) > MAX_ACTIONS:
        lines.append(f"\n… {len(plan) - MAX_ACTIONS} {w['more']}")
    return [*lines, ""]


def _errors(data: ReportData, w: dict[str, str]) -> list[str]:
    errors = [f for f in data.findings if f.status.value == "error"]
    if not errors:
        return []
    lines = [f"<details><summary>{w['errors']} ({len(errors)})</summary>", ""]
    for finding in errors[:MAX_ACTIONS]:
        reason = finding.reason.value if finding.reason else "error"
        lines.append(
            f"- `{finding.rule_id}` {md(finding.resource_key, 80)}: {reason} — "
            f"{md(finding.message, 100)}"
        )
    return [*lines, "", "</details>", ""]


def render(data: ReportData, options: RenderOptions) -> bytes:
    """A compact Markdown summary in French (default) or English."""
    lang = "en" if options.lang == "en" else "fr"
    w = WORDS[lang]
    header = _header(data, w, lang, min_coverage_from_options(options))
    lines = [*header, *_actions(data, w), *_errors(data, w)]
    return "\n".join(lines).encode()


RENDERER = Renderer(
    name="md",
    extensions=(".md", ".markdown"),
    description="Markdown summary for merge-request comments",
    render=render,
)
