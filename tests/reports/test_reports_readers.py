"""The committee report as its readers read it: a CISO, a lay member of the commission,
an auditor, each on paper as well as on screen.

Layout is checked on WeasyPrint's own boxes (no table cell, no text past the page's
content box or out of its cell), French on the rendered words (no English prose, every
message translated), print on lightness (the fills stay apart in grey).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from audit import governance as gov
from audit.models import Finding, Reason, Resource, ScanSummary, Severity, Status, Translation
from audit.reporting import RenderOptions, ReportData
from reports import committee, html
from reports.committee import PALETTE

NBSP = "\u00a0"
ENGLISH_IN_FRENCH = (
    "expected",
    "observed",
    "could not be evaluated",
    "not applicable",
    "complete",
    "interrupted",
    "status",
    "the",
    "and",
    "with",
    "which",
    "should",
    "must",
    "is",
    "are",
    "not",
    "passed",
    "failed",
    "true",
    "false",
    "True",
    "False",
    "none",
    "evidence",
    "finding",
)
"""Words that only an untranslated message puts in French prose."""


# --- data: what an auditor meets in a real scan ------------------------------------------


def engine_findings(base: ReportData) -> tuple[Finding, ...]:
    """Findings as the engine words them: notation, English reasons, raw evidence."""
    template = base.findings[0]
    account = "arn:aws:iam::123456789012:root"
    aws = "aws://audit?regions=eu-west-3&role=arn:aws:iam::123456789012:role/Auditor"

    def make(rule_id: str, **fields: Any) -> Finding:
        defaults: dict[str, Any] = {
            "rule_id": rule_id,
            "policy": "cis-aws-foundations",
            "resource_type": "aws.account",
            "resource_key": account,
            "target": aws,
            "system": "Compte AWS production",
            "controls": {"cis-aws": ("4.14",), "nis2": ("21.2.b",), "anssi-hygiene": ("36",)},
            "first_seen": "2024-05-20T10:00:00+00:00",
            "remediation": "Surveiller les changements de VPC. Console : CloudWatch > Metric "
            "filters > Create ; CLI : aws logs put-metric-filter --log-group-name G",
            "title": "Les modifications de VPC sont surveillées",
        }
        return replace(template, **(defaults | fields))

    return (
        make(
            "AWS-CLOUDWATCH-014",
            status=Status.FAIL,
            severity=Severity.LOW,
            message="expected monitoring.vpc_changes eq True",
            evidence={"monitoring.vpc_changes": False},
        ),
        make(
            "AWS-IAM-017",
            status=Status.ERROR,
            severity=Severity.MEDIUM,
            reason=Reason.NOT_IMPLEMENTED,
            message="could not be evaluated: access-analyzer:ListAnalyzers: service error",
            evidence=None,
        ),
        make(
            "AWS-EC2-005",
            status=Status.SKIP,
            severity=Severity.HIGH,
            message="not applicable",
            evidence=None,
        ),
    )


def reader_data(base: ReportData, status: str = "complete") -> ReportData:
    """The shared fixture plus engine-worded findings, an AWS account and versioned packs."""
    extra = engine_findings(base)
    account = Resource(
        "aws.account",
        extra[0].resource_key,
        extra[0].target,
        extra[0].system,
        {"account_id": "123456789012", "partition": "aws", "regions": ["eu-west-3"]},
    )
    scan = replace(
        base.scan,
        status=status,
        policies=("anssi-tls@1.1", "cis-aws-foundations@3.0.0", "exposure-baseline@1.0"),
    )
    french = tuple(  # policy and acceptance texts in French: only ours may be English
        replace(
            f,
            translations={
                "fr": Translation(f"Règle {f.rule_id} respectée", "Corriger le réglage.")
            },
        )
        for f in base.findings
    )
    acceptances = tuple(
        replace(a, reason="Fenêtre de migration", compensating="Relais interne")
        for a in base.acceptances
    )
    return replace(
        base,
        scan=scan,
        findings=french + extra,
        resources=(*base.resources, account),
        acceptances=acceptances,
    )


class Prose(HTMLParser):
    """The words of a page a reader reads as prose: code, identifiers, raw values, cited
    titles and passages marked ``lang="en"`` (a probe's own message) are left out."""

    VOID = frozenset({"br", "meta", "rect", "path", "line", "circle", "polyline", "img"})

    def __init__(self) -> None:
        super().__init__()
        self.skipping: list[bool] = []
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        skip = tag in ("code", "style", "cite", "title") or found.get("lang") == "en"
        skip = skip or "mono" in classes
        self.skipping.append(skip or bool(self.skipping and self.skipping[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.skipping:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not (self.skipping and self.skipping[-1]):
            self.words += re.findall(r"[A-Za-zÀ-ÿ]+(?:'[A-Za-zÀ-ÿ]+)?", data)


def prose_words(page: str) -> set[str]:
    parser = Prose()
    parser.feed(page)
    return set(parser.words)


def render(data: ReportData, lang: str = "fr", **extra: str) -> str:
    return html.render(data, RenderOptions(lang=lang, extra=extra)).decode().replace(NBSP, " ")


# --- French all the way --------------------------------------------------------------


def test_french_prose_has_no_english_word(report_data: ReportData) -> None:
    for status in ("complete", "interrupted"):
        words = prose_words(render(reader_data(report_data, status), unreached="tls://x"))
        assert sorted(words & set(ENGLISH_IN_FRENCH)) == [], status


def test_english_report_keeps_its_english(report_data: ReportData) -> None:
    page = render(reader_data(report_data), "en")
    assert "expected:" in page and "observed:" in page


def test_evidence_reads_expected_and_observed_in_words(report_data: ReportData) -> None:
    page = render(reader_data(report_data))
    assert "attendu :</span> <code>monitoring.vpc_changes</code> égal à oui" in page
    assert "observé :</span> <code>monitoring.vpc_changes</code> = non" in page
    assert "valeur brute :" in page and "{&#34;monitoring.vpc_changes&#34;: false}" in page
    assert "non pris en charge par la vérification" in page  # the reason, in French
    assert '<span class="tech" lang="en">access-analyzer:ListAnalyzers' in page
    assert "statut : terminé" in page and "complete" not in prose_words(page)


def _python_messages() -> list[str]:
    from babel.messages.extract import extract_python

    found = []
    for module in sorted(Path(committee.__file__).parent.glob("*.py")):
        with module.open("rb") as handle:
            found += [m for _, _, m, _ in extract_python(handle, {"N_": None}, [], {})]
    return found


def test_every_python_message_has_a_french_translation() -> None:
    from babel.messages.pofile import read_po

    from reports.i18n import catalog_path

    messages = _python_messages()
    assert len(messages) > 80  # operators, literals, glossary
    with catalog_path("fr").open("rb") as handle:
        catalog = read_po(handle)
    untranslated = [m for m in messages if catalog.get(m) is None or not catalog.get(m).string]
    assert untranslated == []


def test_glossary_lists_only_terms_the_report_uses(report_data: ReportData) -> None:
    page = render(reader_data(report_data))
    glossary = page[page.index('id="glossary"') :]
    assert "<dt>TLS</dt>" in glossary and "<dt>MFA</dt>" not in glossary
    assert "<dt>ARN</dt>" in glossary  # the cover names the role used
    assert "Transport Layer Security : le protocole" in glossary


def test_dates_read_day_first(report_data: ReportData) -> None:
    page = render(reader_data(report_data))
    assert "20/05/2024" in page  # first seen, in the annex
    chart = committee.trend_chart(committee.build(report_data, RenderOptions(), "fr").trend)
    assert {label["day"] for label in chart["labels"]} == {"2024-05-01", "2024-06-01"}
    assert "#1 · 01/05/2024" in page and "#2 · 01/06/2024" in page


# --- for the auditor -----------------------------------------------------------------


def test_each_finding_shows_rule_policy_version_controls_and_first_seen(
    report_data: ReportData,
) -> None:
    page = render(reader_data(report_data))
    sheet = page[page.index("<code>AWS-CLOUDWATCH-014</code>", page.index('id="evidence"')) :]
    sheet = sheet[: sheet.index('class="sheet"')]
    assert "<code>cis-aws-foundations</code> version 3.0.0" in sheet
    assert "ANSSI hygiène : 36" in sheet and "NIS2 21(2) : 21(2)(b)" in sheet
    assert "CIS AWS : 4.14" in sheet
    assert "<cite>CIS Amazon Web Services Foundations Benchmark" in sheet
    assert "20/05/2024" in sheet
    assert "aws logs put-metric-filter" in sheet  # the command, in the annex only


def test_commands_stay_out_of_the_body(report_data: ReportData) -> None:
    page = render(reader_data(report_data))
    body = page[: page.index('id="evidence"')]
    assert "aws logs" not in body and "Console :" not in body
    assert "Surveiller les changements de VPC." in body or "AWS-CLOUDWATCH-014" in body


def test_index_annex_lets_a_member_recompute_the_index(report_data: ReportData) -> None:
    data = reader_data(report_data)
    workings = gov.index_workings(data.findings)
    assert workings.index == gov.security_index(data.findings)
    page = render(data, min_coverage="0")
    annex = page[page.index('id="index-formula"') :]
    assert "indice = 5 × (1 − (F + ½ A) / T)" in annex
    assert f"T = {workings.total:.0f}" in annex
    assert "Plafonné à 1,9" in annex


def test_json_carries_the_acceptances_owner_and_expiry(report_data: ReportData) -> None:
    from reports import json as json_report

    document = json_report.report_dict(report_data)
    owners = {(a["rule_id"], a["owner"], a["until"]) for a in document["acceptances"]}
    assert ("TLS-CERT-002", "RSSI", "2024-07-15") in owners
    assert all(
        set(a) >= {"decided_by", "revoked_at", "fingerprint"} for a in document["acceptances"]
    )


# --- trend that tells the truth -------------------------------------------------------


def test_trend_shows_criticals_moving_under_a_capped_index(report_data: ReportData) -> None:
    counts = dict(report_data.history[0].counts) | {"open_critical": 10, "open_high": 29}
    earlier = replace(report_data.history[0], counts=counts)
    page = render(replace(report_data, history=(earlier,)), min_coverage="0")
    now = gov.open_by_severity(report_data.findings)
    assert f"critiques ouvertes : 10 → {now['critical']}" in page
    assert f"élevées ouvertes : 29 → {now['high']}" in page


def test_a_first_scan_says_it_is_the_first(report_data: ReportData) -> None:
    page = render(replace(report_data, history=()), min_coverage="0")
    assert "premier scan" in page and "depuis le scan précédent" not in page


# --- for print -----------------------------------------------------------------------


def lightness(colour: str) -> float:
    """CIE L* (0 black – 100 white) of an sRGB ``#rrggbb``: what a grey printer keeps."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    y = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 116 * y ** (1 / 3) - 16 if y > 216 / 24389 else y * 24389 / 27


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("pass", "fail"),
        ("pass", "na"),
        ("fail", "na"),
        ("band0", "band1"),
        ("band1", "band2"),
        ("band2", "band3"),
        ("critical", "high"),
        ("high", "medium"),
        ("medium", "low"),
    ],
)
def test_grey_scale_contrast(first: str, second: str) -> None:
    gap = abs(lightness(PALETTE[first]) - lightness(PALETTE[second]))
    assert gap >= 12, f"{first} and {second} print as the same grey (ΔL* {gap:.1f})"


def test_print_fills_come_from_the_palette(report_data: ReportData) -> None:
    page = render(reader_data(report_data))
    for name in ("pass", "fail", "band0", "band1", "band2", "band3"):
        assert PALETTE[name] in page, name
    assert "url(#hatch-pass)" in page  # passed is hatched, not only coloured
    assert "déconseillée</text>" in page  # gauge bands are labelled


def test_heatmap_is_shaded_by_severity_not_count(
    make_finding: Any, report_data: ReportData
) -> None:
    many_low = [
        make_finding(status=Status.FAIL, severity=Severity.LOW, controls={"anssi-hygiene": ("36",)})
        for _ in range(16)
    ]
    two_critical = [
        make_finding(
            status=Status.FAIL, severity=Severity.CRITICAL, controls={"anssi-hygiene": ("5",)}
        )
        for _ in range(2)
    ]
    page = render(replace(report_data, findings=(*many_low, *two_critical), acceptances=()))
    assert f'background: {PALETTE["critical"]}; color: #ffffff">2<' in page
    assert f'background: {PALETTE["low"]}; color: #1b2333">16<' in page


def test_families_sort_in_numeral_order(make_finding: Any) -> None:
    ids = ("12", "40", "25", "5", "36")  # families III, IX, V, II, VIII
    findings = [make_finding(status=Status.FAIL, controls={"anssi-hygiene": (i,)}) for i in ids]
    families = list(gov.heatmap(findings, "anssi-hygiene"))
    assert families == sorted(families, key=lambda f: gov.roman_value(f) or 0)
    assert families.index("V") < families.index("IX")


# --- PDF: layout, marking ------------------------------------------------------------


@pytest.fixture(scope="module")
def pdf_layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """The report of a busy estate, laid out by WeasyPrint once for every PDF test."""
    weasyprint = pytest.importorskip("weasyprint")
    data = busy_estate()
    page = html.render_html(data, RenderOptions(extra={"marking": "Diffusion restreinte"}))
    document = weasyprint.HTML(string=page).render()
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    document.write_pdf(path)
    yield document, path


def busy_estate() -> ReportData:
    """Sixteen failing rules on long ARNs over five scans: a long plan and a wide trend."""
    from tests.reports.conftest import SYSTEMS

    findings = []
    for n in range(16):
        key = f"arn:aws:ec2:eu-west-3:123456789012:security-group/sg-0123456789abcdef{n:02d}"
        findings.append(
            Finding(
                rule_id=f"AWS-CLOUDWATCH-{n:03d}",
                policy="cis-aws-foundations",
                title="Les modifications des listes de contrôle d'accès réseau sont surveillées "
                * (1 + n % 2),
                resource_type="aws.ec2.security_group",
                resource_key=key,
                target="aws://audit?regions=eu-west-3",
                system=SYSTEMS[n % 3].name,
                status=Status.FAIL,
                severity=list(Severity)[n % 4],
                message="expected monitoring.nacl_changes eq True",
                evidence={"monitoring.nacl_changes": False, "attached": ["i-0a", "i-0b"] * 4},
                controls={"cis-aws": ("4.11",), "anssi-hygiene": (str(1 + n),)},
                remediation="Console : CloudWatch > Log groups > Metric filters ; CLI : aws logs "
                "put-metric-filter --log-group-name GROUP --filter-name NAME",
                first_seen="2024-05-20T10:00:00+00:00",
            )
        )
    counts = {"index": 1.9, "coverage": 100.0, "open_critical": 10, "sla_breaches": 12345}
    history = tuple(
        ScanSummary(i, f"2024-0{i}-01T08:00:00+00:00", None, "complete", (), counts)
        for i in range(1, 5)
    )
    scan = ScanSummary(5, "2024-06-01T08:00:00+00:00", None, "complete", ("x@1",), {})
    return ReportData(scan, tuple(findings), (), SYSTEMS, (), history, "2024-06-02", "0.1.0")


def _outside(box: Any, left: float, right: float) -> bool:
    return box.position_x < left - 0.5 or box.position_x + box.margin_width() > right + 0.5


def test_every_table_cell_lies_within_the_page(pdf_layout: tuple[Any, Path]) -> None:
    from weasyprint.formatting_structure import boxes

    document, _ = pdf_layout
    faults = []
    for number, page in enumerate(document.pages, 1):
        page_box = page._page_box
        left, right = page_box.content_box_x(), page_box.content_box_x() + page_box.width
        for cell in page_box.descendants():
            if not isinstance(cell, boxes.TableCellBox):
                continue
            if _outside(cell, left, right):
                faults.append((number, "cell past the margin", cell.position_x))
            cell_left, cell_right = cell.position_x, cell.position_x + cell.border_width()
            for text in cell.descendants():
                if isinstance(text, boxes.TextBox) and _outside(text, cell_left, cell_right):
                    faults.append((number, "text out of its cell", text.text[:30]))
    assert faults == []


def test_marking_is_on_the_cover_and_every_page(pdf_layout: tuple[Any, Path]) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    document, path = pdf_layout
    for number in range(1, len(document.pages) + 1):
        text = subprocess.run(
            ["pdftotext", "-f", str(number), "-l", str(number), str(path), "-"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        assert "Diffusion restreinte" in text, f"page {number}"


# --- interrupted scans ----------------------------------------------------------------


def test_report_of_an_interrupted_scan_warns_and_says_what_was_not_reached(
    tmp_path: Path, report_data: ReportData, capsys: pytest.CaptureFixture[str]
) -> None:
    from audit.cli import app as cli
    from audit.store import Store

    store = Store(tmp_path / "r.db")
    try:
        scan_id = store.begin_scan(
            policies=["anssi-tls@1.1"],
            inventory=None,
            scope_declared=False,
            targets=["tls://reached.example:443", "tls://never.example:443"],
            systems=(),
            tool_version="0.1.0",
        )
        finding = replace(
            report_data.findings[0], target="tls://reached.example:443", lifecycle=None
        )
        store.record(scan_id, [], [finding])
        store.finish_scan(scan_id, "interrupted")
    finally:
        store.close()
    out = tmp_path / "r.html"
    with pytest.raises(SystemExit) as exited:
        cli.main(["report", "--db", str(tmp_path / "r.db"), "-o", str(out), "--marking", "DR"])
    assert exited.value.code in (0, None)
    err = capsys.readouterr().err
    assert "did not finish" in err and "1 of 2 planned targets were not reached" in err
    page = out.read_text().replace(NBSP, " ")
    banner = page[page.index('id="unfinished"') :]
    assert "Ce scan ne s'est pas terminé" in banner and "statut : interrompu" in banner
    assert "tls://never.example:443" in banner[:1000]
    assert "tls://reached.example:443" not in banner[:1000]
