"""A rule may come without a remediation: the committee report says none was given."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.tls import lab
from tests.hardening.conftest import rempart

POLICY = """\
policy: no-remedy
title: No remedy
rules:
  - id: NOREM-PORT-001
    title: The endpoint listens on port 1
    resource: tls.endpoint
    expect: {key: port, op: eq, value: 1}
    severity: high
    controls: {iso27001: A.8.24}
"""


@pytest.mark.parametrize(
    ("lang", "words"),
    [("fr", "aucune mesure corrective indiquée par la politique"),
     ("en", "no remediation given by the policy")],
)  # fmt: skip
def test_the_report_says_no_remediation_was_given(tmp_path: Path, lang: str, words: str) -> None:
    # Given a failing rule whose policy gives no remediation
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    pki = lab.Pki(tmp_path / "pki")
    with lab.PythonTlsServer(lab.server_context(pki.issue(["localhost"]))) as server:
        run = rempart(
            "scan", f"tls://127.0.0.1:{server.port}", "-p", str(policy), "--ca-file", pki.ca_file,
            "--db", str(tmp_path / "r.db"), "-q", "--lang", lang,
            "-o", str(tmp_path / "report.html"), "-o", str(tmp_path / "junit.xml"),
        )  # fmt: skip
    assert run.code == 0, run.err
    # Then the action plan and the top risks say so, and so does the JUnit body
    html = (tmp_path / "report.html").read_text()
    assert "NOREM-PORT-001" in html
    assert html.count(words) >= 2
    assert "remediation: (none given by the policy)" in (tmp_path / "junit.xml").read_text()
