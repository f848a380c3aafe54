"""Render time of every report format for a large synthetic scan.

    python bench/bench_reports.py [N]        (default 100000 findings)

Not a timed test: prints seconds per format so regressions are visible. The committee
HTML report should stay under 3 s for 100k findings on one core.
"""

from __future__ import annotations

import sys
import time

from audit.models import Finding, Lifecycle, Reason, ScanSummary, Severity, Status, SystemInfo
from audit.reporting import RenderOptions, ReportData

CONTROLS = {"anssi-tls": ("R4",), "nis2": ("21.2.h",), "iso27001": ("A.8.24",), "cis-v8": ("3.10",)}


def synthetic(n: int) -> ReportData:
    """``n`` findings over 4 systems and 40 rules, every status and severity."""
    systems = [SystemInfo(f"Système {i}", owner=f"Pôle {i}", criticality="high") for i in range(4)]
    statuses = (Status.PASS, Status.PASS, Status.PASS, Status.FAIL, Status.ERROR, Status.SKIP)
    findings = tuple(
        Finding(
            rule_id=f"TLS-RULE-{i % 40:03d}",
            policy="anssi-tls",
            title=f"Rule {i % 40}",
            resource_type="tls.endpoint",
            resource_key=f"tls://h{i}.example:443",
            target=f"tls://h{i}.example",
            system=systems[i % 4].name,
            status=statuses[i % 6],
            severity=tuple(Severity)[i % 5],
            message=f"observed {i}",
            evidence={"v": i},
            controls=CONTROLS,
            remediation="Fix it.",
            reason=Reason.TIMEOUT if i % 6 == 4 else None,
            lifecycle=Lifecycle.OPEN,
            first_seen="2024-05-01",
        )
        for i in range(n)
    )
    scan = ScanSummary(1, "2024-06-01T08:00:00+00:00", None, "complete", ("anssi-tls",), {})
    return ReportData(
        scan=scan,
        findings=findings,
        resources=(),
        systems=tuple(systems),
        generated_at="2024-06-02T00:00:00+00:00",
    )


def main() -> None:
    from reports import csv, html, junit, markdown, ocsf, sarif

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    data = synthetic(n)
    html.render(synthetic(10), RenderOptions())  # warm up templates and catalogs
    for module in (html, markdown, sarif, junit, csv, ocsf):
        fresh = ReportData(**{**data.__dict__, "findings": tuple(data.findings)})
        start = time.perf_counter()
        size = len(module.RENDERER.render(fresh, RenderOptions()))
        print(
            f"{module.RENDERER.name:<6} {n} findings: {time.perf_counter() - start:6.2f} s "
            f"({size / 1e6:.1f} MB)"
        )


if __name__ == "__main__":
    main()
