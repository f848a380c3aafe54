"""Reports rendered from a real SQLite store: two scans, an acceptance, every format."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import pytest

from audit import governance as gov
from audit.models import Lifecycle, Resource, Status
from audit.reporting import RenderOptions
from audit.store import Store
from reports import csv as csv_report
from reports import html, junit, markdown, ocsf, sarif


@pytest.fixture
def store_with_two_scans(tmp_path, findings, systems):
    store = Store(tmp_path / "rempart.db")
    first_findings = [replace(f, lifecycle=None, first_seen=None, scan_id=None) for f in findings]
    for scan_number in (1, 2):
        scan_id = store.begin_scan(
            policies=["anssi-tls", "exposure-baseline"],
            inventory=None,
            scope_declared=False,
            targets=["tls://a"],
            systems=systems,
            tool_version="0.1.0",
        )
        batch = (
            first_findings
            if scan_number == 1
            else [
                replace(f, status=Status.PASS) if f.rule_id == "NET-PORT-002" else f
                for f in first_findings
            ]
        )
        resources = [
            Resource(f.resource_type, f.resource_key, f.target, f.system, {})
            for f in {f.resource_key: f for f in batch}.values()
        ]
        store.record(scan_id, resources, batch)
        store.finish_scan(scan_id, "complete")
        store.set_scores(scan_id, gov.score_snapshot(store.load_report(scan_id)))
    accepted = next(f for f in first_findings if f.rule_id == "TLS-CERT-002")
    store.accept(
        fingerprint_=accepted.fingerprint,
        rule_id=accepted.rule_id,
        resource_key=accepted.resource_key,
        owner="RSSI",
        reason="legacy relay",
        until=date.today() + timedelta(days=30),
    )
    yield store, scan_id
    store.close()


def test_every_format_renders_from_the_store(store_with_two_scans):
    store, scan_id = store_with_two_scans
    data = store.load_report(scan_id, tool_version="0.1.0")
    assert len(data.history) == 1
    assert any(f.lifecycle is Lifecycle.ACCEPTED for f in data.findings)
    assert any(f.lifecycle is Lifecycle.RESOLVED for f in data.findings)
    for module in (html, sarif, junit, csv_report, markdown, ocsf):
        assert module.RENDERER.render(data, RenderOptions())
    page = html.render(data, RenderOptions()).decode()
    assert "Risques acceptés" in page and "<script>alert" not in page
    assert json.loads(sarif.render(data, RenderOptions()))["version"] == "2.1.0"
