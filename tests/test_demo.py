"""`rempart demo`: the embedded lab, two scans, the reports a newcomer opens first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

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
    assert {"tls.endpoint", "net.service", "aws.s3.bucket"} <= types
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
