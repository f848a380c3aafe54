"""The store under faults: ``kill -9`` at many moments of long scans, and two scans
writing one store while reports read it.

Scans run in processes of their own (:mod:`tests.hardening.store_worker`, the in-process
``facts`` family of the spine tests: the store is under test, not the network). After
every kill the SQLite file must pass ``PRAGMA integrity_check``, every target that was
stored must have all its findings, the scan must read as interrupted, and the history
(new / open / resolved / reopened) must still follow what was recorded.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from audit.errors import StoreError
from audit.store import Store

from .conftest import Run, rempart

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


RESOURCES = (
    "(SELECT m.scan_id, r.key, r.target FROM scan_resources m JOIN resources r ON r.rowid = m.row)"
)
"""Each resource of each scan (schema 3 keeps a resource's row until its facts change)."""


def assert_whole(db: Path) -> None:
    """Integrity, and every stored target complete: all its resources, all their findings."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_resource = conn.execute(
            "SELECT scan_id, resource_key, COUNT(*) FROM findings_full "
            "GROUP BY scan_id, resource_key"
        ).fetchall()
        assert all(n == RULES_PER_RESOURCE for _, _, n in per_resource), per_resource
        per_target = conn.execute(
            f"SELECT scan_id, target, COUNT(*) FROM {RESOURCES} GROUP BY scan_id, target"
        ).fetchall()
        assert all(n == RESOURCES_PER_TARGET for _, _, n in per_target), per_target
        orphans = conn.execute(
            f"SELECT COUNT(*) FROM findings_full f LEFT JOIN {RESOURCES} r "
            "ON r.scan_id = f.scan_id AND r.key = f.resource_key WHERE r.key IS NULL"
        ).fetchone()[0]
        assert orphans == 0
    finally:
        conn.close()


def assert_history_follows_the_record(db: Path) -> None:
    """Each failing finding's lifecycle agrees with its fingerprint's earlier rows."""
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT fingerprint, scan_id, status, history FROM findings_full ORDER BY scan_id"
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
        conn.execute("SELECT scan_id, COUNT(*) FROM scan_findings GROUP BY scan_id").fetchall()
    )
    conn.close()
    assert sorted(counts.values()) == [300 * RESOURCES_PER_TARGET * RULES_PER_RESOURCE] * 2


# --- a store that cannot be trusted -----------------------------------------------------
#
# Whoever can write the store's directory can plant a link, a FIFO or a trigger in it.
# Each attack below is refused with one line and exit 2, before anything runs.

FLIP = (
    "CREATE TRIGGER flip AFTER INSERT ON findings BEGIN "
    "UPDATE findings SET status = 'pass' WHERE rowid = NEW.rowid; END"
)
LOAD = (
    "CREATE TRIGGER ext AFTER INSERT ON findings BEGIN "
    "SELECT load_extension('/tmp/rempart-evil.so'); END"
)
FAKE_VIEW = (
    "CREATE VIEW findings_full AS SELECT f.scan_id, f.fingerprint, f.rule_id, t.policy, "
    "t.title, f.resource_type, f.resource_key, f.target, f.system, 'pass' AS status, "
    "f.severity, f.message, f.evidence, t.controls, t.remediation, f.reason, f.history, "
    "f.first_seen, '' AS title_fr, '' AS remediation_fr, t.translations "
    "FROM findings f JOIN rule_texts t "
    "ON t.id = f.texts"
)
READ_COMMANDS = (
    ("findings", "--all", "--json"),
    ("diff", "1", "2", "--json"),
    ("acceptances",),
    ("report", "-o", "{out}"),
)


@pytest.fixture
def scanned(tmp_path: Path, policy: Path) -> Path:
    """A store holding two complete scans with failures (high and low)."""
    db = tmp_path / "r.db"
    for variant in (0, 1):
        done = worker(db, policy, targets=6, sleep=0.0, variant=variant)
        out, err = done.communicate(timeout=120)
        assert done.returncode == 0 and out.split()[1] == "complete", err
    return db


def plant(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def scan_cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Path,
    policy: Path,
    *extra: str,
) -> tuple[int, str]:
    """``rempart scan`` in this process, over the in-process ``facts`` family."""
    from audit.cli import app as cli
    from audit.registry import Families

    from .store_worker import facts_family, spec_for

    family = facts_family()
    families = Families({"facts": family}, {"facts": family})
    monkeypatch.setattr(cli, "_families", lambda: families)
    spec = spec_for("c", 3, 0.0, 0)
    inventory = db.parent / "inventory.yaml"
    targets = ", ".join(f"facts://{name}" for name in spec)
    inventory.write_text(
        f"systems:\n  - name: S\n    targets: [{targets}]\nfacts: {json.dumps(spec)}\n"
    )
    args = ["scan", "-i", str(inventory), "-p", str(policy), "--db", str(db), "-q", *extra]
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    return int(exited.value.code or 0), capsys.readouterr().err


def refused(run: Run, fragment: str) -> None:
    assert run.code == 2, (run.code, run.err)
    assert run.err.startswith("rempart: error:") and fragment in run.err, run.err
    assert "Traceback" not in run.err and run.err.count("\n") == 1, run.err


def test_a_dangling_link_is_refused_and_its_target_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    policy: Path,
) -> None:  # fmt: skip
    # Given --db naming a link to a file that does not exist yet
    target = tmp_path / "elsewhere" / "x.db"
    target.parent.mkdir()
    link = tmp_path / "r.db"
    link.symlink_to(target)
    # When a scan, a read command or the library opens it
    code, err = scan_cli(capsys, monkeypatch, link, policy, "--fail-on", "low")
    # Then each refuses it in one line, and nothing is created at the link's target
    assert code == 2 and "is a symbolic link" in err and "Traceback" not in err, err
    refused(rempart("findings", "--db", str(link)), "is a symbolic link")
    with pytest.raises(StoreError, match="symbolic link"):
        Store(link)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_link_to_an_existing_store_is_refused(scanned: Path) -> None:
    link = scanned.with_name("link.db")
    link.symlink_to(scanned)
    before = scanned.read_bytes()
    refused(rempart("findings", "--db", str(link)), "is a symbolic link")
    refused(rempart("db", "merge", str(scanned.with_name("m.db")), str(link)), "symbolic link")
    with pytest.raises(StoreError, match="symbolic link"):
        Store(link)
    assert scanned.read_bytes() == before


def test_a_link_beside_the_store_is_refused(scanned: Path, tmp_path: Path) -> None:
    # a -wal link would have SQLite write the log through it
    (tmp_path / "r.db-wal").unlink(missing_ok=True)
    (tmp_path / "r.db-wal").symlink_to(tmp_path / "victim")
    with pytest.raises(StoreError, match=r"r\.db-wal: is a symbolic link"):
        Store(scanned)
    refused(rempart("report", "--db", str(scanned), "-o", str(tmp_path / "r.json")), "r.db-wal")
    assert not (tmp_path / "victim").exists()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_db_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "r.db"
    if kind == "fifo":
        os.mkfifo(db)
    else:
        db.mkdir()
    # (a FIFO opened for reading would block forever: the timeout says it did not; the
    # command line names a directory as such)
    said = "is a directory" if kind == "directory" else "is not a regular file"
    refused(rempart("findings", "--db", str(db), timeout=30), said)
    with pytest.raises(StoreError, match="is not a regular file"):
        Store(db)


def test_a_planted_trigger_that_flips_failures_is_refused(
    scanned: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    policy: Path,
) -> None:  # fmt: skip
    # Given a store with failures, and a trigger that rewrites every new failure as a pass
    plant(scanned, FLIP)
    # When the CI gate scans into it
    code, err = scan_cli(capsys, monkeypatch, scanned, policy, "--fail-on", "low")
    # Then the scan is refused with one line naming the trigger, and the gate fails
    assert code == 2, err
    assert "schema was altered (trigger flip)" in err and "Traceback" not in err, err
    # And so is every command that reads the store, and the library
    for command in READ_COMMANDS:
        args = [a.format(out=scanned.with_name("r.json")) for a in command]
        refused(rempart(*args, "--db", str(scanned)), "trigger flip")
    with pytest.raises(StoreError, match="trigger flip"):
        Store(scanned, readonly=True)
    assert not scanned.with_name("r.json").exists()
    # And no scan was added to the store
    conn = sqlite3.connect(scanned)
    assert conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0] == 2
    conn.close()


def test_a_load_extension_trigger_is_a_clear_error(
    scanned: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    policy: Path,
) -> None:  # fmt: skip
    plant(scanned, LOAD)
    code, err = scan_cli(capsys, monkeypatch, scanned, policy)
    assert code == 2 and "trigger ext" in err and "Traceback" not in err, err
    refused(rempart("findings", "--db", str(scanned)), "trigger ext")


def test_schema_functions_cannot_run_even_where_the_schema_is_ours(scanned: Path) -> None:
    # a second line of defence: the connection itself distrusts the schema
    store = Store(scanned)
    assert store.conn.execute("PRAGMA trusted_schema").fetchone()[0] == 0
    store.close()


@pytest.mark.parametrize(
    "statements",
    [
        pytest.param(("DROP VIEW findings_full", FAKE_VIEW), id="view-redefined"),
        pytest.param(
            ("DROP VIEW findings_full", "CREATE TABLE findings_full (scan_id, status)"),
            id="table-in-its-place",
        ),
        pytest.param(("CREATE VIEW passing AS SELECT 1",), id="view-added"),
        pytest.param(
            (
                "ALTER TABLE acceptances RENAME TO old_acceptances",
                "CREATE VIRTUAL TABLE acceptances USING fts5(fingerprint, owner)",
            ),
            id="virtual-table",
        ),
        pytest.param(
            ("CREATE UNIQUE INDEX one_per_print ON findings (first_scan, fingerprint)",),
            id="unique",
        ),
    ],
)
def test_a_replaced_or_added_view_or_key_is_refused(
    scanned: Path, tmp_path: Path, statements: tuple[str, ...]
) -> None:
    plant(scanned, *statements)
    refused(rempart("findings", "--db", str(scanned)), "refusing a store")
    with pytest.raises(StoreError, match="refusing a store"):
        Store(scanned)
    from audit.scale.merge import merge_stores

    with pytest.raises(StoreError, match="refusing a store"):
        merge_stores(tmp_path / "merged.db", [scanned])


def test_tables_and_indexes_of_other_names_are_left_alone(scanned: Path) -> None:
    # what datasette or an analyst adds beside our tables is not ours to judge
    plant(
        scanned,
        "CREATE TABLE notes (fingerprint TEXT, note TEXT)",
        "CREATE INDEX findings_by_rule ON findings (rule_id)",
    )
    run = rempart("findings", "--db", str(scanned), "--json")
    assert run.code == 0 and run.out.strip(), run.err


def test_read_commands_change_nothing_and_run_nothing(scanned: Path, tmp_path: Path) -> None:
    # Given a store whose last scan's process is gone (it still reads 'running')
    plant(
        scanned,
        "UPDATE scans SET status = 'running', finished_at = NULL, pid = 2147483647 WHERE id = 2",
    )
    before = (scanned.read_bytes(), scanned.stat().st_mtime_ns)
    # When every reading command runs on it
    for command in READ_COMMANDS:
        args = [a.format(out=tmp_path / "r.json") for a in command]
        run = rempart(*args, "--db", str(scanned))
        assert run.code == 0, (command, run.err)
    # Then the file is unchanged: no recovery, no write
    assert (scanned.read_bytes(), scanned.stat().st_mtime_ns) == before
    conn = sqlite3.connect(scanned)
    assert conn.execute("SELECT status FROM scans WHERE id = 2").fetchone()[0] == "running"
    conn.close()
    # And the report shows the scan as the interrupted scan it is, with its counts
    scan = json.loads((tmp_path / "r.json").read_text())["scan"]
    assert scan["status"] == "interrupted" and scan["counts"]["fail"] > 0


def test_a_read_command_reads_a_store_a_scan_is_writing(tmp_path: Path, policy: Path) -> None:
    # Given a scan in progress (its WAL not yet checkpointed)
    db = tmp_path / "r.db"
    writer = worker(db, policy, targets=60, sleep=0.05, variant=0)
    deadline = time.monotonic() + 30
    while not (tmp_path / "r.db-wal").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    # When findings are read from it, read-only
    run = rempart("findings", "--db", str(db), "--all", "--json")
    writer.communicate(timeout=120)
    # Then they are read (what was committed), and the scan completes
    assert run.code == 0 and run.out.strip(), run.err
    assert writer.returncode == 0


def test_a_reader_that_cannot_open_the_store_errs_rather_than_read_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store whose newest scan is in the WAL of a writer that holds it exclusively
    db = tmp_path / "r.db"
    Store(db).close()  # the schema is in the file itself
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA locking_mode = EXCLUSIVE")
    writer.execute("INSERT INTO scans (started_at, status) VALUES ('2026-12-04', 'running')")
    immutable = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    stale = immutable.execute("SELECT COUNT(*) FROM scans").fetchone()[0]
    immutable.close()
    assert stale == 0  # what reading the file as immutable reports: not the scan
    # When the store is opened for reading, in a directory that can be written
    monkeypatch.setattr("audit.store.file.BUSY_S", 0.1)
    monkeypatch.setattr("audit.store.file.READ_RETRY_S", 0.5)
    started = time.monotonic()
    # Then it tries again for a while, then says it cannot: never a report of nothing
    with pytest.raises(StoreError, match="cannot open the store: database is locked"):
        Store(db, readonly=True)
    assert 0.5 <= time.monotonic() - started < 5
    writer.close()
    # And once the writer is gone it reads the scan
    reader = Store(db, readonly=True)
    assert len(reader.scans()) == 1
    reader.close()
