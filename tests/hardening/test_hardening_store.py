"""The store under faults: ``kill -9`` at many moments of long scans, and two scans
writing one store while reports read it.

Scans run in processes of their own (:mod:`tests.hardening.store_worker`, the in-process
``facts`` family of the spine tests: the store is under test, not the network). After
every kill the SQLite file must pass ``PRAGMA integrity_check``, every target that was
stored must have all its findings, the scan must read as interrupted, and the history
(new / open / resolved / reopened) must still follow what was recorded.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from audit.store import Store

from .conftest import rempart

WORKER = Path(__file__).with_name("store_worker.py")
POLICY = """\
policy: demo
title: Demo
rules:
  - id: DEMO-PORT-001
    title: Only allowed ports
    resource: demo.item
    expect: {key: port, op: in, value: [80, 443]}
    severity: high
    remediation: Close it.
  - id: DEMO-TAG-001
    title: Tagged with owner
    resource: demo.item
    expect: {key: tags, op: contains, value: owner}
    severity: low
    remediation: Tag it.
"""
RULES_PER_RESOURCE = 2
RESOURCES_PER_TARGET = 2
KILLS = 24
KILLED_MID_SCAN = 20


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(POLICY)
    return path


def worker(db: Path, policy: Path, targets: int, sleep: float, variant: int,
           prefix: str = "t") -> subprocess.Popen[str]:  # fmt: skip
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(policy), str(targets), str(sleep),
         str(variant), prefix],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def assert_whole(db: Path) -> None:
    """Integrity, and every stored target complete: all its resources, all their findings."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_resource = conn.execute(
            "SELECT scan_id, resource_key, COUNT(*) FROM findings GROUP BY scan_id, resource_key"
        ).fetchall()
        assert all(n == RULES_PER_RESOURCE for _, _, n in per_resource), per_resource
        per_target = conn.execute(
            "SELECT scan_id, target, COUNT(*) FROM resources GROUP BY scan_id, target"
        ).fetchall()
        assert all(n == RESOURCES_PER_TARGET for _, _, n in per_target), per_target
        orphans = conn.execute(
            "SELECT COUNT(*) FROM findings f LEFT JOIN resources r ON r.scan_id = f.scan_id "
            "AND r.key = f.resource_key WHERE r.key IS NULL"
        ).fetchone()[0]
        assert orphans == 0
    finally:
        conn.close()


def assert_history_follows_the_record(db: Path) -> None:
    """Each failing finding's lifecycle agrees with its fingerprint's earlier rows."""
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT fingerprint, scan_id, status, history FROM findings ORDER BY scan_id"
    ).fetchall()
    conn.close()
    earlier: dict[str, list[str]] = defaultdict(list)
    for fingerprint, _scan, status, history in rows:
        before = earlier[fingerprint]
        if status == "fail":
            if "fail" not in before:
                expected = "new"
            elif before[-1] in ("fail", "error"):
                expected = "open"
            else:
                expected = "reopened"
            assert history == expected, (fingerprint, before, status, history)
        elif status == "pass" and before and before[-1] == "fail":
            assert history == "resolved"
        before.append(status)


@pytest.mark.slow
def test_kill_9_at_many_moments_keeps_a_whole_store(tmp_path: Path, policy: Path) -> None:
    db = tmp_path / "r.db"
    chooser = random.Random(20261126)  # fixed seed: the same kill points every run
    killed = 0
    for attempt in range(KILLS):
        # Given a long scan in its own process (150 targets, 4 at a time, 0.1 s each)
        proc = worker(db, policy, targets=150, sleep=0.1, variant=attempt)
        # When it is killed with SIGKILL at a random moment (start-up included)
        time.sleep(chooser.uniform(0.5, 3.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate()
        # Then the file is whole and every stored target has all its findings
        if db.exists():
            assert_whole(db)
    assert killed == KILLS
    # And the next command sees every killed scan as interrupted
    store = Store(db)
    statuses = [scan.status for scan in store.scans()]
    assert statuses and set(statuses) <= {"interrupted", "complete"}
    # (a kill during start-up leaves no scan row; enough must land mid-scan)
    assert len(statuses) == statuses.count("interrupted") >= KILLED_MID_SCAN
    store.close()
    # And two complete scans afterwards work, as do findings and diff on the command line
    for variant in (100, 101):
        done = worker(db, policy, targets=20, sleep=0.0, variant=variant)
        out, err = done.communicate(timeout=120)
        assert done.returncode == 0 and out.split()[1] == "complete", err
    assert_whole(db)
    assert_history_follows_the_record(db)
    diff = rempart("diff", "--db", str(db), "--json")
    assert diff.code == 0, diff.err
    listed = rempart("findings", "--db", str(db), "--json")
    assert listed.code == 0 and listed.out.strip(), listed.err


@pytest.mark.slow
def test_two_scans_and_readers_share_one_store(tmp_path: Path, policy: Path) -> None:
    # Given two scans writing one store at once
    db = tmp_path / "r.db"
    Store(db).close()
    writers = [
        worker(db, policy, targets=300, sleep=0.03, variant=n, prefix=f"w{n}-") for n in (1, 2)
    ]
    # When reports and finding lists are read from it all the while
    reads = []
    while any(w.poll() is None for w in writers):
        reads.append(rempart("findings", "--db", str(db), "--all", "--json"))
        reads.append(rempart("report", "--db", str(db), "-o", str(tmp_path / "live.json")))
    outcomes = [w.communicate() for w in writers]
    # Then no one met a locked database, and both scans are complete and whole
    for writer, (out, err) in zip(writers, outcomes, strict=True):
        assert writer.returncode == 0, err
        assert "locked" not in err and out.split()[1] == "complete"
    assert len(reads) >= 4
    for read in reads:
        assert read.code in (0, 2), read.err
        assert "locked" not in read.err and "Traceback" not in read.err
        if read.code == 2:  # only before the first scan row exists
            assert "holds no scan" in read.err
    assert_whole(db)
    conn = sqlite3.connect(db)
    counts = dict(
        conn.execute("SELECT scan_id, COUNT(*) FROM findings GROUP BY scan_id").fetchall()
    )
    conn.close()
    assert sorted(counts.values()) == [300 * RESOURCES_PER_TARGET * RULES_PER_RESOURCE] * 2
