"""`rempart demo`: the embedded lab, two scans, the reports a newcomer opens first."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "demo", "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc.stdout


def test_demo_writes_every_report_and_says_where(demo_run: tuple[Path, str]) -> None:
    out, stdout = demo_run
    for name in (
        "report-fr.html",
        "report-en.html",
        "findings.sarif",
        "findings.json",
        "inventory.yaml",
        "rempart.db",
    ):
        assert (out / name).stat().st_size > 0, name
    assert f"{out.resolve() / 'report-fr.html'}" in stdout


def test_demo_shows_a_trend_resolved_findings_and_an_acceptance(demo_run: tuple[Path, str]) -> None:
    out, _ = demo_run
    report = json.loads((out / "findings.json").read_text())
    assert report["scan"]["id"] == 2 and report["scan"]["status"] == "complete"
    lifecycles = {f["lifecycle"] for f in report["findings"]}
    assert {"resolved", "open", "accepted"} <= lifecycles
    types = {r["type"] for r in report["resources"]}
    assert {"tls.endpoint", "net.service", "aws.s3.bucket", "web.site"} <= types
    sites = [r for r in report["resources"] if r["type"] == "web.site"]
    assert all(site["facts"]["tls_verified"] for site in sites)  # the lab CAs are trusted
    assert any(f["rule_id"].startswith("WEBH-") for f in report["findings"])
    assert len(report["systems"]) == 2
    failing = {f["rule_id"] for f in report["findings"] if f["status"] == "fail"}
    assert any(rule.startswith("CERT-") for rule in failing)
    assert any(rule.startswith("EXP-") for rule in failing)


def test_demo_report_is_french_and_names_the_owner(demo_run: tuple[Path, str]) -> None:
    out, _ = demo_run
    html = (out / "report-fr.html").read_text()
    assert 'lang="fr"' in html
    assert "Mme Durand (RSSI)" in html
    assert "Portail usagers" in html


def test_demo_pdf_body_holds_the_decisions_in_twelve_pages(demo_run: tuple[Path, str]) -> None:
    """The body (cover to action plan) fits in 12 pages; the evidence goes to the annex."""
    out, _ = demo_run
    pdf = out / "report.pdf"
    if not pdf.exists() or shutil.which("pdftotext") is None:
        pytest.skip("no PDF (WeasyPrint) or no pdftotext (poppler-utils)")
    pages = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout.split("\f")
    annex = next(i for i, page in enumerate(pages, 1) if "Annexe : éléments de preuve" in page)
    assert annex - 1 <= 12, f"body of {annex - 1} pages"
    body = "\f".join(pages[: annex - 1])
    assert "aws logs" not in body and "CLI :" not in body  # commands are in the annex
    assert "mozilla-modern" not in pages[0]  # one Mozilla profile, no contradictory advice


# --- every rule says its failure in a sentence, on real observations ---------------------


def _demo_resources(out: Path) -> list[Any]:
    """The resources the demo's lab really produced (AWS under moto, TLS, ports)."""
    from audit.models import Problem, Reason, Resource

    report = json.loads((out / "findings.json").read_text())
    return [
        Resource(
            r["type"],
            r["key"],
            r["target"],
            r["system"],
            r["facts"],
            {n: Problem(Reason(p["reason"]), p["message"]) for n, p in r["unknown"].items()},
        )
        for r in report["resources"]
    ]


def _message_problems(rule: Any, params: Any, resources: list[Any]) -> tuple[list[str], bool]:
    """What is wrong with ``rule``'s sentences on the demo's resources of its type, and
    whether it was judged on failures.

    On a resource the rule fails, every placeholder must be filled. A rule the demo never
    fails is rendered on every resource of its type: there the facts its condition judges
    may be absent (a passing resource), but those naming the resource may not.
    """
    from audit.evaluate.conditions import search
    from audit.evaluate.rules import BoundRule, evaluate_rule, failure_message
    from audit.evaluate.template import placeholders
    from audit.models import Status

    mine = [r for r in resources if r.type == rule.resource]
    failing = [r for r in mine if evaluate_rule(BoundRule(rule, params), r).status is Status.FAIL]
    judged = set() if failing else set(rule.reads)
    problems = []
    for lang in ("en", "fr"):
        template = _template_of(rule, lang)
        if not template:
            problems.append(f"{rule.id} has no {lang} message")
            continue
        for resource in failing or mine:
            said = failure_message(rule, resource.facts, lang=lang)
            unfilled = [
                name
                for name in placeholders(template)
                if search(name, resource.facts) is None and name.split(".")[0] not in judged
            ]
            if unfilled or "{" in said or "}" in said:
                problems.append(f"{rule.id} {lang} on {resource.key}: {unfilled} in {said!r}")
    return problems, bool(failing)


def _template_of(rule: Any, lang: str) -> str:
    """The rule's message template in ``lang`` (French from its translations)."""
    if lang == "en":
        return str(rule.message)
    translated = getattr(rule, "translations", {}).get(lang)
    return str(translated.message if translated is not None else rule.message_fr)


def test_every_built_in_rule_names_the_resource_on_real_observations(
    demo_run: tuple[Path, str],
) -> None:
    # Given every built-in pack (mozilla-modern too) and the demo lab's real observations
    from audit.policy import load_policy
    from audit.registry import builtin_policies

    out, _ = demo_run
    resources = _demo_resources(out)
    problems, on_failures = [], 0
    for path in builtin_policies().values():
        policy = load_policy(path)
        for rule in policy.rules:
            # When each rule's message is rendered in English and French
            found, failed = _message_problems(rule, policy.params, resources)
            problems += found
            on_failures += failed
    # Then no placeholder is left unfilled, and most rules were judged on a real failure
    assert problems == []
    assert on_failures >= 70


# --- page 2 and the action plan read as sentences ------------------------------------

_SYNTAX = re.compile(
    r"\bexpected\b|\battendu\s*:|[\w.()\[\]]*[_.(][\w.()\[\]]* "
    r"(?:eq|ne|lt|le|gt|ge|in|not_in|contains|subset_of|disjoint_from|matches)\b"
)
_PLACEHOLDER = re.compile(r"[{}]|(?:^|[\s(])\?(?:[\s),;.]|$)")


def _texts(html: str, block: str, item: str) -> list[tuple[str, str]]:
    """``(markup, text)`` of each ``item`` inside the first ``block`` of the page."""
    start = html.index(block)
    end = html.index("</" + block[1:].split(maxsplit=1)[0] + ">", start)
    chunks = re.split(item, html[start:end])[1:]
    return [(c, unescape(re.sub(r"<[^>]+>", " ", c))) for c in chunks]


def _not_a_sentence(text: str) -> str | None:
    """Why ``text`` is syntax, not a sentence (None when it reads as one)."""
    if found := _SYNTAX.search(text) or _PLACEHOLDER.search(text):
        return found.group(0)
    if '":' in text or "[{" in text:
        return "raw JSON"
    return None


def test_top_risks_and_action_plan_read_as_sentences(demo_run: tuple[Path, str]) -> None:
    # Given the demo's French committee report
    out, _ = demo_run
    html = (out / "report-fr.html").read_text()
    # When its top risks (page 2) and its action plan lines are read
    risks = _texts(html, '<ol class="risks">', r"<li\b")
    plan = [r for r in _texts(html, '<table class="plan">', r"<tr\b") if "c-action" in r[0]]
    # Then each is prose: no condition syntax, no raw JSON, no placeholder left
    assert len(risks) == 5 and len(plan) > 20
    faults = [(text, why) for _, text in risks + plan if (why := _not_a_sentence(text))]
    assert faults == []
    # and each top risk says what is wrong with which resource, in a sentence of its rule
    for markup, text in risks:
        said = re.findall(r'<br><span class="small">([^<]+)', markup)
        assert said and not said[0].startswith("À faire"), text
