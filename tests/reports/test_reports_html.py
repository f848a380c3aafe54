"""Committee report: escaping, languages, catalogs, PDF and a real browser's rendering."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audit.errors import DependencyError
from audit.reporting import RenderOptions
from reports import html

FRENCH_TITLES = (
    "Synthèse",
    "Périmètre et méthode",
    "Posture de sécurité",
    "Évolution",
    "Risques acceptés",
    "Plan d'action",
    "Annexe : éléments de preuve",
)
ENGLISH_TITLES = (
    "Executive summary",
    "Scope and method",
    "Security posture",
    "Trends",
    "Accepted risks",
    "Action plan",
    "Evidence appendix",
)


def _text(report_data, lang="fr", **extra):
    return html.render(report_data, RenderOptions(lang=lang, extra=extra)).decode()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_no_hostile_string_survives_unescaped(lang, report_data):
    page = _text(report_data, lang, marking="<b>DR</b>")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in page and "\\x1b[31m" in page
    assert "<b>DR</b>" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)


def test_french_by_default_with_every_section(report_data):
    page = html.render(report_data, RenderOptions()).decode()
    assert '<html lang="fr">' in page
    for title in FRENCH_TITLES:
        assert title in page or title.replace("'", "&#39;") in page, title
    assert "Aucun périmètre déclaré" in page


def test_english_on_request(report_data):
    page = _text(report_data, "en")
    assert '<html lang="en">' in page
    for title in ENGLISH_TITLES:
        assert title in page, title
    assert "No scope declared" in page
    assert "Synthèse" not in page


def test_scope_declared_is_not_flagged(report_data):
    from dataclasses import replace

    data = replace(report_data, scan=replace(report_data.scan, scope_declared=True))
    assert "Aucun périmètre déclaré" not in _text(data)


def test_governance_content_is_shown(report_data):
    page = _text(report_data).replace("\u00a0", " ")
    # 8 of 9 applicable findings evaluated (the AWS check was denied): 88.8 % < 90 %
    assert "Pas d'indice : 88,8 % des contrôles applicables ont pu être vérifiés" in page
    assert "Homologation déconseillée" not in page and "grade grade-E" not in page
    lenient = _text(report_data, min_coverage="80")
    assert "1,5" in lenient and "grade grade-E" in lenient  # index 1.5, French notation
    assert "Homologation déconseillée" in lenient
    assert "expire bientôt" in page and "expiré" in page  # acceptance flags
    assert "accès refusé" in page and "iam:GetAccountSummary denied" in page
    assert page.count('class="prio prio-P1"') >= 3
    assert "#1" in page and "#2" in page  # trend over both scans


def test_no_javascript_and_self_contained(report_data):
    page = _text(report_data)
    assert "<script" not in page and "javascript:" not in page.lower()
    assert "<style>" in page and "<svg" in page
    assert "default-src 'none'" in page


def test_every_template_string_has_a_french_translation():
    from babel.messages.pofile import read_po
    from jinja2.ext import babel_extract

    from reports.i18n import catalog_path

    with catalog_path("fr").open("rb") as handle:
        catalog = read_po(handle)
    templates = Path(html.__file__).parent / "templates"
    missing = []
    for path in templates.glob("*.j2"):
        with path.open("rb") as handle:
            for _, _, message, _ in babel_extract(
                handle, ["_", "gettext", "ngettext"], [], {"extensions": "jinja2.ext.i18n"}
            ):
                msgid = message[0] if isinstance(message, tuple) else message
                entry = catalog.get(msgid)
                if (
                    entry is None
                    or not entry.string
                    or (isinstance(entry.string, tuple) and not all(entry.string))
                ):
                    missing.append(msgid)
    assert missing == []


def test_pdf_renders_and_page_one_rasterises(report_data, tmp_path):
    pytest.importorskip("weasyprint")
    from reports import pdf

    out = pdf.render(report_data, RenderOptions())
    assert out.startswith(b"%PDF")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed")
    path = tmp_path / "report.pdf"
    path.write_bytes(out)
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    pages = list(tmp_path.glob("page*.png"))
    assert pages and pages[0].stat().st_size > 1000


def test_pdf_without_weasyprint_says_how_to_install(report_data, monkeypatch):
    from reports import pdf

    monkeypatch.setitem(sys.modules, "weasyprint", None)
    with pytest.raises(DependencyError, match="pip install 'rempart\\[pdf\\]'"):
        pdf.render(report_data, RenderOptions())


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed")
def test_headless_chromium_screenshot(report_data, tmp_path):
    page = tmp_path / "report.html"
    page.write_bytes(html.render(report_data, RenderOptions()))
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1240,1754",
            page.as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
