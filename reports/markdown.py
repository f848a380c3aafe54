"""Markdown: a short summary to post as a merge-request or pull-request comment.

Index and grade, open failures by severity, then the most urgent actions (at most 15
lines) and the checks that could not run. Untrusted strings are escaped for Markdown
(and HTML, since forges render inline HTML) and kept on one line.
"""

from __future__ import annotations

import html
import re

from audit import governance as gov
from audit.reporting import Renderer, RenderOptions, ReportData
from reports._text import one_line, shorten

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")
MAX_ACTIONS = 15
WORDS = {
    "fr": {
        "title": "Rempart — scan",
        "index": "Indice",
        "grade": "note",
        "open": "Échecs ouverts",
        "actions": "Actions prioritaires",
        "errors": "Contrôles non évalués",
        "none": "Aucun échec ouvert.",
        "rule": "Règle",
        "sev": "Gravité",
        "res": "Ressources",
        "due": "Échéance",
        "more": "autres actions",
    },
    "en": {
        "title": "Rempart — scan",
        "index": "Index",
        "grade": "grade",
        "open": "Open failures",
        "actions": "Priority actions",
        "errors": "Checks not evaluated",
        "none": "No open failure.",
        "rule": "Rule",
        "sev": "Severity",
        "res": "Resources",
        "due": "Due",
        "more": "more actions",
    },
}


def md(text: object, limit: int = 120) -> str:
    """Untrusted text made inert in Markdown: one line, HTML-escaped, specials escaped."""
    flat = shorten(one_line(text), limit)
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _header(data: ReportData, w: dict[str, str]) -> list[str]:
    index = gov.security_index(data.findings)
    shown = "—" if index is None else f"{index:.1f}/5"
    counts = gov.open_by_severity(data.findings)
    line = " · ".join(f"{k} {v}" for k, v in counts.items() if k != "info")
    return [
        f"### {w['title']} #{data.scan.id}",
        "",
        f"**{w['index']}** {shown} ({w['grade']} **{gov.grade(index)}**) · **{w['open']}**: {line}",
        "",
    ]


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
    w = WORDS["en" if options.lang == "en" else "fr"]
    lines = [*_header(data, w), *_actions(data, w), *_errors(data, w)]
    return "\n".join(lines).encode()


RENDERER = Renderer(
    name="md",
    extensions=(".md", ".markdown"),
    description="Markdown summary for merge-request comments",
    render=render,
)
