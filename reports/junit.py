"""JUnit XML: one test case per rule × resource, for CI systems that show test reports.

``fail`` becomes a ``<failure>``, ``error`` an ``<error>`` (the check could not observe:
the message carries the reason), ``skip`` a ``<skipped>``. One ``<testsuite>`` per system
so a CI page groups results the way the committee does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

from audit.models import Finding, Status
from audit.reporting import Renderer, RenderOptions, ReportData
from reports._text import evidence_text, one_line, printable, xml_safe


def _case(suite: ET.Element, finding: Finding) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": one_line(f"{finding.policy}.{finding.rule_id}"),
            "name": one_line(f"{finding.rule_id} {finding.resource_key}"),
            "file": one_line(finding.target),
        },
    )
    message = one_line(finding.message or finding.title)
    body = printable(
        f"{finding.title}\n{finding.message}\n"
        f"evidence: {evidence_text(finding.evidence, 2000)}\n"
        f"remediation: {finding.remediation or '(none given by the policy)'}"
    )
    if finding.status is Status.FAIL:
        child = ET.SubElement(case, "failure", {"message": message, "type": finding.severity.value})
        child.text = body
    elif finding.status is Status.ERROR:
        reason = finding.reason.value if finding.reason else "error"
        child = ET.SubElement(case, "error", {"message": message, "type": reason})
        child.text = body
    elif finding.status is Status.SKIP:
        ET.SubElement(case, "skipped", {"message": message})


def _suite(root: ET.Element, system: str, findings: list[Finding], stamp: str) -> None:
    counts = Counter(f.status for f in findings)
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": one_line(system),
            "tests": str(len(findings)),
            "failures": str(counts[Status.FAIL]),
            "errors": str(counts[Status.ERROR]),
            "skipped": str(counts[Status.SKIP]),
            "timestamp": stamp,
        },
    )
    for finding in findings:
        _case(suite, finding)


def render(data: ReportData, options: RenderOptions) -> bytes:
    """JUnit XML (UTF-8) of every finding of the scan."""
    by_system: dict[str, list[Finding]] = defaultdict(list)
    for finding in data.findings:
        by_system[finding.system].append(finding)
    counts = Counter(f.status for f in data.findings)
    root = ET.Element(
        "testsuites",
        {
            "name": f"rempart scan {data.scan.id}",
            "tests": str(len(data.findings)),
            "failures": str(counts[Status.FAIL]),
            "errors": str(counts[Status.ERROR]),
            "skipped": str(counts[Status.SKIP]),
        },
    )
    for system in sorted(by_system):
        _suite(root, system, by_system[system], data.scan.started_at[:19])
    _make_well_formed(root)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _make_well_formed(root: ET.Element) -> None:
    """Escape what XML 1.0 forbids in every text and attribute (ElementTree writes it raw).

    Certificate fields and banners can hold U+FFFE or a lone surrogate; written as is,
    the CI system reading the report would reject the whole file, or the encoder would.
    """
    for element in root.iter():
        if element.text:
            element.text = xml_safe(element.text)
        for name, value in element.attrib.items():
            element.attrib[name] = xml_safe(value)


RENDERER = Renderer(
    name="junit",
    extensions=(".xml", ".junit.xml"),
    description="JUnit XML, one test case per rule and resource",
    render=render,
)
