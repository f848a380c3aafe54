"""CSV: one row per finding, safe to open in a spreadsheet.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be
read as a formula by Excel or LibreOffice (CSV injection): such a cell is prefixed with a
single quote. Control characters are escaped first, so nothing hides behind them.
"""

from __future__ import annotations

import csv
import io

from audit.models import Finding
from audit.reporting import Renderer, RenderOptions, ReportData
from reports._text import evidence_text, one_line

COLUMNS = (
    "fingerprint",
    "scan_id",
    "system",
    "rule_id",
    "policy",
    "title",
    "severity",
    "status",
    "lifecycle",
    "reason",
    "resource_type",
    "resource_key",
    "target",
    "message",
    "evidence",
    "controls",
    "first_seen",
    "remediation",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """One cell: control characters escaped, formula triggers neutralised."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return one_line(text)


def _row(finding: Finding, scan_id: int) -> list[str]:
    controls = " ".join(f"{fw}:{cid}" for fw, ids in finding.controls.items() for cid in ids)
    values = (
        finding.fingerprint,
        scan_id,
        finding.system,
        finding.rule_id,
        finding.policy,
        finding.title,
        finding.severity.value,
        finding.status.value,
        finding.lifecycle.value if finding.lifecycle else "",
        finding.reason.value if finding.reason else "",
        finding.resource_type,
        finding.resource_key,
        finding.target,
        finding.message,
        evidence_text(finding.evidence, 2000),
        controls,
        finding.first_seen or "",
        finding.remediation,
    )
    return [safe_cell(v) for v in values]


def render(data: ReportData, options: RenderOptions) -> bytes:
    """CSV (UTF-8 with BOM so spreadsheets detect the encoding), header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for finding in data.findings:
        writer.writerow(_row(finding, data.scan.id))
    return buffer.getvalue().encode("utf-8-sig")


RENDERER = Renderer(
    name="csv",
    extensions=(".csv",),
    description="CSV, one row per finding (spreadsheet-safe)",
    render=render,
)
