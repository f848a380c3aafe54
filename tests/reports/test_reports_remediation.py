"""A rule may come without a remediation: the committee report says none was given."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import replace
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from audit.errors import DependencyError
from audit.models import Resource, Severity, Status
from audit.reporting import RenderOptions
from checks.tls import lab
from reports import html
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


# --- a command names the finding's own resource -------------------------------------

REMEDIATION = (
    "Turn on Block all public access. CLI: aws s3api put-public-access-block --bucket {name} "
    "--public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true."
)


def _with_bucket(report_data: Any, make_finding: Any, name: str) -> Any:
    """The shared report plus one public bucket called ``name``, failing AWS-S3-101."""
    key = "arn:aws:s3:::lab-bucket"
    finding = make_finding(
        rule_id="AWS-S3-101", policy="aws-baseline", status=Status.FAIL, resource_key=key,
        resource_type="aws.s3.bucket", target="aws://prod", severity=Severity.CRITICAL,
        remediation=REMEDIATION, title="No bucket is public",
    )  # fmt: skip
    bucket = Resource("aws.s3.bucket", key, "aws://prod", "Portail usagers", {"name": name})
    return replace(
        report_data,
        findings=(*report_data.findings, finding),
        resources=(*report_data.resources, bucket),
    )


def _commands(page: str) -> list[str]:
    """The command lines of the annex's evidence rows, as a reader copies them."""
    found = re.findall(r'<div class="mono small cmd">([^<]*)</div>', page)
    return [unescape(text) for text in found]


def test_the_annex_fills_the_command_with_each_resource(
    report_data: Any, make_finding: Any
) -> None:
    # Given a failing bucket whose rule gives a command line with {name}
    data = _with_bucket(report_data, make_finding, "lab-public-data")
    # When the committee report is rendered
    page = html.render(data, RenderOptions(lang="en")).decode()
    # Then the evidence row's command names this bucket, the rule's sheet says <name>
    assert _commands(page) == [
        "CLI: aws s3api put-public-access-block --bucket lab-public-data "
        "--public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true."
    ]
    assert "--bucket &lt;name&gt;" in page
    assert "{name}" not in page


def test_a_hostile_bucket_name_stays_one_quoted_argument(
    report_data: Any, make_finding: Any, tmp_path: Path
) -> None:
    # Given a bucket whose name is a shell command and markup (a store written by others)
    hostile = "x; rm -rf / <script>"
    data = _with_bucket(report_data, make_finding, hostile)
    # When the committee report is rendered
    page = html.render(data, RenderOptions(lang="fr")).decode()
    # Then the markup is escaped, and the command keeps the name as one quoted argument
    assert hostile not in page and "x; rm -rf / &lt;script&gt;" in page
    (command,) = _commands(page)
    words = shlex.split(command.removeprefix("CLI: "))
    assert words[words.index("--bucket") + 1] == hostile
    assert ";" not in words and "rm" not in words
    # and the PDF prints the same quoted argument, as text
    try:
        from reports import pdf

        printed = pdf.render(data, RenderOptions(lang="fr"))
    except DependencyError:
        pytest.skip("no WeasyPrint")
    if shutil.which("pdftotext") is None:
        pytest.skip("no pdftotext (poppler-utils)")
    (tmp_path / "r.pdf").write_bytes(printed)
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "--bucket 'x; rm -rf / <script>'" in " ".join(text.split())
