"""No opinion without evidence: the index weighs evaluated rules only, and reports give no
index, grade or homologation advice when too few applicable checks were verified, when
the scan did not complete, or when nothing was evaluated. Every case goes through the
command line, a store and the rendered reports (HTML, Markdown, JSON, PDF)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from audit import governance as gov
from audit.cli import app as cli
from audit.models import Finding, Reason, Resource, Severity, Status
from audit.store import Store

from .conftest import SYSTEMS, FindingFactory

NBSP = "\u00a0"
GRADES = tuple(f'class="grade grade-{letter}"' for letter in "ABCDEF")
ADVICE_FR = ("Homologation envisageable", "Homologation déconseillée")
ADVICE_EN = ("Homologation can be granted", "Homologation not advised")


@dataclass(frozen=True)
class Rendered:
    """The reports of one scan, in both languages, as text."""

    html_fr: str
    html_en: str
    md_fr: str
    md_en: str
    scan_json: dict[str, object]

    def assert_no_opinion(self, reason_fr: str, reason_en: str) -> None:
        """No index, grade or advice anywhere, and the reason in both languages."""
        for page in (self.html_fr, self.html_en):
            assert not any(g in page for g in GRADES)
            assert 'class="grade grade--"' in page
        assert not any(a in self.html_fr for a in ADVICE_FR)
        assert not any(a in self.html_en for a in ADVICE_EN)
        assert reason_fr in self.html_fr and reason_fr in self.md_fr
        assert reason_en in self.html_en and reason_en in self.md_en
        assert "**Indice** —" in self.md_fr and "**Index** —" in self.md_en
        index = self.scan_json["index"]
        assert isinstance(index, dict)
        assert index["value"] is None and index["grade"] is None and index["validity"] is None


def run(capsys: pytest.CaptureFixture[str], *args: str) -> int:
    """One ``rempart`` command line, as a user types it; returns the exit code."""
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    capsys.readouterr()
    return int(exited.value.code or 0)


def report(capsys: pytest.CaptureFixture[str], db: Path, out: Path, *options: str) -> Rendered:
    """``rempart report`` in French and in English, read back as text."""
    out.mkdir(exist_ok=True)
    common = ("report", "--db", str(db), *options)
    fr = ("-o", str(out / "fr.html"), "-o", str(out / "fr.md"), "-o", str(out / "r.json"))
    assert run(capsys, *common, *fr) == 0
    en = ("--lang", "en", "-o", str(out / "en.html"), "-o", str(out / "en.md"))
    assert run(capsys, *common, *en) == 0

    def text(name: str) -> str:
        return (out / name).read_text(encoding="utf-8").replace(NBSP, " ")

    return Rendered(
        text("fr.html"),
        text("en.html"),
        text("fr.md"),
        text("en.md"),
        json.loads(text("r.json"))["scan"],
    )


def store_scan(db: Path, findings: Sequence[Finding], status: str = "complete") -> int:
    """One scan written through the store API, closed as the engine closes it."""
    store = Store(db)
    try:
        scan_id = store.begin_scan(
            policies=["anssi-tls@1.0"],
            inventory=None,
            scope_declared=False,
            targets=sorted({f.target for f in findings}),
            systems=SYSTEMS[:1],
            tool_version="0.1.0",
        )
        resources = [
            Resource(f.resource_type, f.resource_key, f.target, f.system, {})
            for f in {f.resource_key: f for f in findings}.values()
        ]
        store.record(scan_id, resources, list(findings))
        store.finish_scan(scan_id, status)
        store.set_scores(scan_id, gov.score_snapshot(store.load_report(scan_id)))
        return scan_id
    finally:
        store.close()


def fresh(make_finding: FindingFactory, status: Status, severity: Severity) -> Finding:
    """A finding as the engine hands it to the store (no lifecycle, not yet seen)."""
    finding: Finding = make_finding(status=status, severity=severity)
    reason = Reason.UNREACHABLE if status is Status.ERROR else None
    return replace(finding, lifecycle=None, first_seen=None, scan_id=None, reason=reason)


def mix(make_finding: FindingFactory, evaluated: int, errors: int) -> list[Finding]:
    """``evaluated`` low passes, ``errors`` unreachable checks and one skip (not applicable)."""
    items = [fresh(make_finding, Status.PASS, Severity.LOW) for _ in range(evaluated)]
    items += [fresh(make_finding, Status.ERROR, Severity.CRITICAL) for _ in range(errors)]
    return [*items, fresh(make_finding, Status.SKIP, Severity.HIGH)]


# --- a closed port: 48 errors, nothing verified ---------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_scan_of_a_closed_port_gives_no_index_and_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, closed_port: int
) -> None:
    # Given a first-time user scanning a port where nothing listens
    db = tmp_path / "rempart.db"
    code = run(capsys, "scan", f"tls://127.0.0.1:{closed_port}", "--db", str(db), "-q")
    assert code == 0

    # When the reports are rendered
    rendered = report(capsys, db, tmp_path / "out")

    # Then nothing was verified, and no report turns that into an opinion
    coverage = rendered.scan_json["coverage"]
    assert isinstance(coverage, dict)
    assert coverage["evaluated"] == 0 and coverage["applicable"] > 0
    assert coverage["percent"] == 0.0 and coverage["threshold"] == 90.0
    rendered.assert_no_opinion(
        "Pas d'indice : 0 % des contrôles applicables ont pu être vérifiés (seuil 90 %).",
        "No index: 0% of the applicable checks could be verified (threshold 90%).",
    )
    assert rendered.scan_json["index"] == {
        "value": None,
        "grade": None,
        "validity": None,
        "withheld": "low_coverage",
    }


def test_pdf_of_a_closed_port_scan_gives_no_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, closed_port: int
) -> None:
    pytest.importorskip("weasyprint")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    db = tmp_path / "rempart.db"
    assert run(capsys, "scan", f"tls://127.0.0.1:{closed_port}", "--db", str(db), "-q") == 0
    for lang in ("fr", "en"):
        pdf = tmp_path / f"{lang}.pdf"
        assert run(capsys, "report", "--db", str(db), "--lang", lang, "-o", str(pdf)) == 0
        text = subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, timeout=60
        ).stdout.decode()
        flat = " ".join(text.replace(NBSP, " ").split())
        expected = "Pas d'indice" if lang == "fr" else "No index"
        assert expected in flat
        assert not any(a in flat for a in (*ADVICE_FR, *ADVICE_EN))


# --- coverage around the threshold -----------------------------------------------------


@pytest.mark.parametrize(
    ("evaluated", "errors", "shown", "has_index"),
    [
        (9, 1, "90 %", True),  # exactly the threshold: enough
        (19, 1, "95 %", True),
        (8, 1, "88,8 %", False),  # 88.9 % rounded down, never up to what it missed
        (899, 101, "89,9 %", False),  # just below: 89.9 %
    ],
)
def test_coverage_threshold_decides_whether_there_is_an_index(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    make_finding: FindingFactory,
    evaluated: int,
    errors: int,
    shown: str,
    has_index: bool,
) -> None:
    # Given a complete scan where some applicable checks could not be verified
    db = tmp_path / "rempart.db"
    store_scan(db, mix(make_finding, evaluated, errors))

    # When it is reported
    rendered = report(capsys, db, tmp_path / "out")

    # Then the coverage is shown, and the index only when it reaches 90 %
    assert f"Couverture** {shown}" in rendered.md_fr
    assert f"{evaluated} contrôles vérifiés sur {evaluated + errors} applicables" in rendered.md_fr
    index = rendered.scan_json["index"]
    assert isinstance(index, dict)
    if has_index:
        # only low passes were evaluated: 5 × (1 − 0/weights) = 5.0; errors weigh nothing
        assert index == {"value": 5.0, "grade": "A", "validity": "3y", "withheld": None}
        assert "Homologation envisageable pour 3 ans au plus" in rendered.html_fr
        assert "Homologation can be granted for up to 3 years" in rendered.html_en
    else:
        rendered.assert_no_opinion(
            f"Pas d'indice : {shown} des contrôles applicables ont pu être vérifiés (seuil 90 %).",
            f"No index: {shown.replace(',', '.').replace(' ', '')} of the applicable checks "
            "could be verified (threshold 90%).",
        )


def test_min_coverage_option_moves_the_threshold(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_finding: FindingFactory
) -> None:
    # Given 8 of 9 applicable checks verified (88.8 %)
    db = tmp_path / "rempart.db"
    store_scan(db, mix(make_finding, 8, 1))

    # When the committee accepts 85 %, or demands 100 %
    lenient = report(capsys, db, tmp_path / "lenient", "--min-coverage", "85")
    strict = report(capsys, db, tmp_path / "strict", "--min-coverage", "100")

    # Then the first report gives an index and the second gives none, saying why
    assert lenient.scan_json["index"] == {
        "value": 5.0,
        "grade": "A",
        "validity": "3y",
        "withheld": None,
    }
    strict.assert_no_opinion(
        "Pas d'indice : 88,8 % des contrôles applicables ont pu être vérifiés (seuil 100 %).",
        "No index: 88.8% of the applicable checks could be verified (threshold 100%).",
    )


# --- an interrupted scan ----------------------------------------------------------------


def test_interrupted_scan_gives_no_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_finding: FindingFactory
) -> None:
    # Given a scan killed halfway: what it recorded was all verified
    db = tmp_path / "rempart.db"
    store_scan(db, mix(make_finding, 20, 0), status="interrupted")

    # When it is reported
    rendered = report(capsys, db, tmp_path / "out")

    # Then full coverage of what it reached does not make up for what it did not reach
    coverage = rendered.scan_json["coverage"]
    assert isinstance(coverage, dict) and coverage["percent"] == 100.0
    rendered.assert_no_opinion(
        "Pas d'indice : le scan ne s'est pas terminé (statut : interrompu)",
        "No index: the scan did not complete (status: interrupted)",
    )
    assert rendered.scan_json["index"] == {
        "value": None,
        "grade": None,
        "validity": None,
        "withheld": "incomplete_scan",
    }


# --- a healthy scan ---------------------------------------------------------------------


def test_healthy_scan_index_weighs_evaluated_rules_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make_finding: FindingFactory
) -> None:
    # Given 15 evaluated findings, one critical check that could not run and one skip
    accepted = fresh(make_finding, Status.FAIL, Severity.MEDIUM)
    findings = [
        fresh(make_finding, Status.PASS, Severity.CRITICAL),
        fresh(make_finding, Status.FAIL, Severity.MEDIUM),
        accepted,
        *(fresh(make_finding, Status.PASS, Severity.LOW) for _ in range(12)),
        fresh(make_finding, Status.ERROR, Severity.CRITICAL),
        fresh(make_finding, Status.SKIP, Severity.HIGH),
    ]
    db = tmp_path / "rempart.db"
    store_scan(db, findings)
    store = Store(db)
    try:
        store.accept(
            fingerprint_=accepted.fingerprint,
            rule_id=accepted.rule_id,
            resource_key=accepted.resource_key,
            owner="RSSI",
            reason="replaced next quarter",
            until=date.today() + timedelta(days=90),
        )
    finally:
        store.close()

    # When it is reported
    rendered = report(capsys, db, tmp_path / "out")

    # Then, by hand: the critical error weighs nothing, so T = 10 + 2 + 2 + 12 = 26 and
    # against = 2 (medium failure) + 2/2 (accepted) = 3: index = 5 × 23/26 = 4.42 → 4.4, B.
    # (Counting the error as half a failure gave 5 × (1 − 8/36) = 3.9.)
    # Coverage: 15 evaluated of 16 applicable = 93.75 % → 93.7 % (the skip did not apply).
    assert rendered.scan_json["coverage"] == {
        "evaluated": 15,
        "applicable": 16,
        "percent": 93.7,
        "threshold": 90.0,
    }
    assert rendered.scan_json["index"] == {
        "value": 4.4,
        "grade": "B",
        "validity": "3y",
        "withheld": None,
    }
    assert "**Indice** 4.4/5 (note **B**)" in rendered.md_fr
    assert "**Couverture** 93,7 % (15 contrôles vérifiés sur 16 applicables)" in rendered.md_fr
    assert "**Coverage** 93.7% (15 of 16 applicable checks verified)" in rendered.md_en
    assert "4,4" in rendered.html_fr and 'class="grade grade-B"' in rendered.html_fr
    assert "93,7 %" in rendered.html_fr and "93.7%" in rendered.html_en
    assert "Homologation envisageable pour 3 ans au plus" in rendered.html_fr
    assert "Homologation can be granted for up to 3 years" in rendered.html_en
