"""Machine formats: each renders, has the right shape and neutralises hostile strings."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from audit.reporting import RenderOptions
from reports import csv as csv_report
from reports import junit, markdown, ocsf, sarif

HOSTILE = ("<script>alert(1)</script>", '=HYPERLINK("http://evil.example/x","clic")', "\x1b[31m")

# The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) that we emit, with the
# same required keys and enumerations.
SARIF_SHAPE = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": {"$ref": "#/$defs/message"},
                                                "fullDescription": {"$ref": "#/$defs/message"},
                                                "help": {"$ref": "#/$defs/message"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {"$ref": "#/$defs/level"}
                                                    },
                                                },
                                                "properties": {
                                                    "type": "object",
                                                    "required": ["security-severity"],
                                                    "properties": {
                                                        "security-severity": {
                                                            "type": "string",
                                                            "pattern": r"^\d+\.\d$",
                                                        }
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message", "ruleId"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": 0},
                                "level": {"$ref": "#/$defs/level"},
                                "kind": {
                                    "enum": [
                                        "notApplicable",
                                        "pass",
                                        "fail",
                                        "review",
                                        "open",
                                        "informational",
                                    ]
                                },
                                "message": {"$ref": "#/$defs/message"},
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "required": ["uri"],
                                                    }
                                                },
                                            },
                                            "logicalLocations": {"type": "array"},
                                        },
                                    },
                                },
                                "partialFingerprints": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "$defs": {
        "message": {
            "type": "object",
            "required": ["text"],
            "properties": {"text": {"type": "string"}},
        },
        "level": {"enum": ["none", "note", "warning", "error"]},
    },
}


@pytest.mark.parametrize("module", [sarif, junit, csv_report, markdown, ocsf])
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_machine_format_renders(module, lang, report_data):
    out = module.RENDERER.render(report_data, RenderOptions(lang=lang))
    assert isinstance(out, bytes) and out
    assert b"\x1b" not in out


def test_sarif_has_the_2_1_0_shape(report_data):
    log = json.loads(sarif.render(report_data, RenderOptions()))
    jsonschema.validate(log, SARIF_SHAPE)
    run = log["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["TLS-CERT-001"]["properties"]["security-severity"] == "9.5"
    assert rules["TLS-PROTO-001"]["properties"]["security-severity"] == "8.0"
    assert rules["TLS-CERT-002"]["properties"]["security-severity"] == "5.5"
    assert rules["NET-PORT-002"]["properties"]["security-severity"] == "3.0"
    assert rules["TLS-PROTO-001"]["help"]["text"].startswith("Disable SSLv3")
    results = run["results"]
    by_rule = {r["ruleId"]: r for r in results}
    cert = next(f for f in report_data.findings if f.rule_id == "TLS-CERT-001")
    assert by_rule["TLS-CERT-001"]["partialFingerprints"] == {"rempart/v1": cert.fingerprint}
    assert (
        by_rule["TLS-CERT-001"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == cert.target
    )
    assert by_rule["AWS-IAM-001"]["kind"] == "review"
    assert "access_denied" in by_rule["AWS-IAM-001"]["message"]["text"]
    assert all(
        rules[r["ruleId"]] is run["tool"]["driver"]["rules"][r["ruleIndex"]]
        or rules[r["ruleId"]] == run["tool"]["driver"]["rules"][r["ruleIndex"]]
        for r in results
    )


def test_junit_parses_with_one_case_per_rule_and_resource(report_data):
    root = ET.fromstring(junit.render(report_data, RenderOptions()))
    cases = root.findall(".//testcase")
    assert len(cases) == len(report_data.findings)
    assert int(root.get("failures")) == sum(
        1 for f in report_data.findings if f.status.value == "fail"
    )
    assert len(root.findall(".//failure")) == int(root.get("failures"))
    errors = root.findall(".//error")
    assert len(errors) == 1 and errors[0].get("type") == "access_denied"
    assert len(root.findall(".//skipped")) == 1
    suites = {s.get("name") for s in root.findall("testsuite")}
    assert suites == {"Portail usagers", "Messagerie", "Compte AWS production"}


def test_csv_cells_are_neutralised(report_data):
    text = csv_report.render(report_data, RenderOptions()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(csv_report.COLUMNS)
    assert len(rows) == len(report_data.findings) + 1
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
            assert "\x1b" not in cell and "\n" not in cell
    assert any(
        cell.startswith("'=HYPERLINK") or "=HYPERLINK" in cell for row in rows for cell in row
    )


@pytest.mark.parametrize("value", ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_csv_formula_triggers(value):
    cell = csv_report.safe_cell(value)
    assert cell.startswith("'")


def test_markdown_summary_escapes_hostile_strings(report_data):
    text = markdown.render(report_data, RenderOptions()).decode()
    assert "<script>" not in text
    assert "Actions prioritaires" in text
    assert "`TLS-CERT-001`" in text
    english = markdown.render(report_data, RenderOptions(lang="en")).decode()
    assert "Priority actions" in english


def test_ocsf_events_match_the_ocsf_classes(report_data):
    events = json.loads(ocsf.render(report_data, RenderOptions()))
    detections = [e for e in events if e["class_uid"] == 2004]
    compliance = [e for e in events if e["class_uid"] == 2003]
    failing = [f for f in report_data.findings if f.status.value in ("fail", "error")]
    assert len(detections) == len(failing)
    assert {e["type_uid"] for e in detections} == {200401}
    assert compliance and {e["type_uid"] for e in compliance} == {200301}
    nis2_h = next(
        e
        for e in compliance
        if e["compliance"]["control"] == "21.2.h" and e["compliance"]["standards"] == ["nis2"]
    )
    assert nis2_h["compliance"]["status"] == "Fail"
    models = pytest.importorskip("py_ocsf_models.events.findings.detection_finding")
    comp_models = pytest.importorskip("py_ocsf_models.events.findings.compliance_finding")
    for event in detections:
        models.DetectionFinding.model_validate(event)
    for event in compliance:
        comp_models.ComplianceFinding.model_validate(event)


def test_renderers_register_as_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="rempart.reports")}
    assert {"html", "pdf", "sarif", "junit", "csv", "md", "ocsf"} <= names


@pytest.mark.parametrize(
    "facts",
    [
        {"subject": "Hôpital de Besançon", "ratio": 0.1, "ports": (25, 587)},
        {"serial": 2**80 + 1, "subject": "Hôpital de Besançon"},  # past 64 bits
        {"banner": "SSH-2.0-\udcff\udcfe", "subject": "Hôpital"},  # lone surrogates
    ],
    ids=["plain", "long-integer", "lone-surrogate"],
)
def test_json_report_is_the_document_in_utf8(facts, report_data):
    # Given a report whose resource holds non-ASCII text, and a value orjson refuses
    from dataclasses import replace

    from reports import json as json_report

    first = replace(report_data.resources[0], facts=facts)
    data = replace(report_data, resources=(first, *report_data.resources[1:]))
    # When it is rendered
    out = json_report.RENDERER.render(data, RenderOptions())
    # Then it is strict UTF-8 JSON holding the document exactly, non-ASCII written as is
    document = json.loads(out.decode("utf-8"))
    assert document["resources"][0]["facts"] == json.loads(
        json.dumps(json_report.report_dict(data)["resources"][0]["facts"])
    )
    assert "Hôpital".encode() in out and out.endswith(b"}\n")
    if "serial" in facts:
        assert document["resources"][0]["facts"]["serial"] == 2**80 + 1
