"""A store written before schema 1 gained its last columns is still opened and written.

Schema 1 as the first stores were created with it (before French titles and the
per-fingerprint target): such a store says ``user_version`` 1, like a current one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from audit.models import Finding, Lifecycle, Severity, Status
from audit.store import Store

from .conftest import rempart

FIRST_SCHEMA_1 = """
CREATE TABLE scans (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
    status TEXT NOT NULL, policies TEXT NOT NULL DEFAULT '[]', counts TEXT NOT NULL DEFAULT '{}',
    inventory TEXT, scope_declared INTEGER NOT NULL DEFAULT 1, targets TEXT NOT NULL DEFAULT '[]',
    systems TEXT NOT NULL DEFAULT '[]', scores TEXT, pid INTEGER, host TEXT, tool_version TEXT);
CREATE TABLE resources (scan_id INTEGER NOT NULL REFERENCES scans(id), key TEXT NOT NULL,
    type TEXT NOT NULL, target TEXT NOT NULL, system TEXT NOT NULL, facts TEXT NOT NULL,
    unknown TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (scan_id, key));
CREATE TABLE findings (scan_id INTEGER NOT NULL REFERENCES scans(id),
    fingerprint TEXT NOT NULL, rule_id TEXT NOT NULL, policy TEXT NOT NULL, title TEXT NOT NULL,
    resource_type TEXT NOT NULL, resource_key TEXT NOT NULL, target TEXT NOT NULL,
    system TEXT NOT NULL, status TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,
    evidence TEXT, controls TEXT NOT NULL DEFAULT '{}', remediation TEXT NOT NULL DEFAULT '',
    reason TEXT, history TEXT, first_seen TEXT, PRIMARY KEY (scan_id, fingerprint));
CREATE INDEX findings_status ON findings (scan_id, status, severity);
CREATE TABLE finding_state (fingerprint TEXT PRIMARY KEY, last_scan_id INTEGER NOT NULL,
    last_status TEXT NOT NULL, ever_failed INTEGER NOT NULL, first_seen TEXT) WITHOUT ROWID;
CREATE TABLE acceptances (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL,
    rule_id TEXT NOT NULL, resource_key TEXT NOT NULL, owner TEXT NOT NULL, reason TEXT NOT NULL,
    compensating TEXT NOT NULL DEFAULT '', decided_by TEXT NOT NULL DEFAULT '',
    until TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
CREATE TABLE finding_events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, scan_id INTEGER,
    fingerprint TEXT NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}');
INSERT INTO scans (id, started_at, finished_at, status, pid, host)
    VALUES (1, '2026-01-05T08:00:00+00:00', '2026-01-05T08:01:00+00:00', 'complete', 1, 'x');
INSERT INTO findings (scan_id, fingerprint, rule_id, policy, title, resource_type,
    resource_key, target, system, status, severity, message, history, first_seen)
    VALUES (1, '89e90dcea102e900929f0b9b5d7374d0', 'HARD-SCHEMA-001', 'p', 't', 'r', 'k', 't',
    's', 'fail', 'high', 'm', 'new', '2026-01-05T08:00:00+00:00');
INSERT INTO finding_state VALUES ('89e90dcea102e900929f0b9b5d7374d0', 1, 'fail', 1,
    '2026-01-05T08:00:00+00:00');
PRAGMA user_version = 1;
"""


def finding(status: Status) -> Finding:
    return Finding(rule_id="HARD-SCHEMA-001", policy="p", title="t", resource_type="r",
                   resource_key="k", target="t", system="s", status=status,
                   severity=Severity.HIGH, message="m")  # fmt: skip


def test_a_first_schema_store_is_completed_and_keeps_its_history(tmp_path: Path) -> None:
    # Given a store created with the first form of schema 1, holding one failing finding
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(FIRST_SCHEMA_1)
    conn.close()
    # When the current version opens it and records a new scan
    store = Store(db)
    scan_id = store.begin_scan(policies=[], inventory=None, scope_declared=True, targets=[],
                               systems=[], tool_version="x")  # fmt: skip
    (stamped,) = store.record(scan_id, [], [finding(Status.FAIL)])
    store.finish_scan(scan_id, "complete")
    # Then the finding continues its history, and every command reads the store
    assert stamped.fingerprint == "89e90dcea102e900929f0b9b5d7374d0"
    assert stamped.lifecycle is Lifecycle.OPEN  # failed in the old scan, fails again
    assert stamped.first_seen == "2026-01-05T08:00:00+00:00"
    assert store.findings(1)[0].translations == {}
    for args in (["findings", "--scan", "1"], ["diff", "--json"], ["acceptances"]):
        run = rempart(*args, "--db", str(db))
        assert run.code == 0 and "Traceback" not in run.err, (args, run.err)
    assert store.scan(scan_id).counts["fail"] == 1
