"""The store's layout: findings appended in write order, rule texts kept once, repeats
folded when a scan closes, and schema 1 stores carried over whole."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from audit.errors import StoreError
from audit.models import Finding, Lifecycle, Resource, Severity, Status, Translation
from audit.store import MIGRATIONS, Observed, Store, fingerprint_for, open_for_reading


def finding(
    rule: str = "LAYOUT-001",
    key: str = "tcp://192.0.2.1:22",
    status: Status = Status.FAIL,
    **changes: object,
) -> Finding:
    base = Finding(
        rule_id=rule,
        policy="layout",
        title=f"title of {rule}",
        resource_type="net.service",
        resource_key=key,
        target="ports://192.0.2.1",
        system="sys",
        status=status,
        severity=Severity.HIGH,
        message="m",
        controls={"cis-v8": ("4.4",)},
        remediation="close it",
        translations={"fr": Translation("titre", "fermer")},
    )
    return base.evolve(**changes) if changes else base


def begin(store: Store) -> int:
    return store.begin_scan(
        policies=["layout@1"],
        inventory=None,
        scope_declared=True,
        targets=[],
        systems=[],
        tool_version="t",
    )


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_a_fingerprint_written_twice_in_a_scan_keeps_its_last_record(tmp_path: Path) -> None:
    # Given one resource reached through two targets, written twice in one scan
    store = Store(tmp_path / "r.db")
    scan = begin(store)
    store.record(scan, [], [finding(message="first")])
    store.record(scan, [], [finding(message="second", target="tls://192.0.2.1")])
    store.finish_scan(scan, "complete")
    # Then the scan holds it once, as last written, and counts it once
    (kept,) = store.findings(scan)
    assert (kept.message, kept.target) == ("second", "tls://192.0.2.1")
    assert store.scan(scan).counts["fail"] == 1
    # And the next scan sees it as open, not new
    later = begin(store)
    (again,) = store.record(later, [], [finding()])
    assert again.lifecycle is Lifecycle.OPEN


def test_an_interrupted_scan_is_folded_without_its_repeats(tmp_path: Path) -> None:
    # Given a scan that wrote one fingerprint twice and whose process is gone
    db = tmp_path / "r.db"
    store = Store(db)
    scan = begin(store)
    store.record(scan, [], [finding(message="first")])
    store.record(scan, [], [finding(message="second")])
    store.conn.execute("UPDATE scans SET pid = NULL WHERE id = ?", (scan,))
    store.close()
    # When another command opens the store
    reopened = Store(db)
    # Then the scan is interrupted, whole, with its last record only
    assert reopened.scan(scan).status == "interrupted"
    assert [f.message for f in reopened.findings(scan)] == ["second"]


def test_rule_texts_are_stored_once_per_version_of_a_rule(tmp_path: Path) -> None:
    # Given 50 findings of one rule, then the same rule with a corrected French title
    db = tmp_path / "r.db"
    store = Store(db)
    scan = begin(store)
    store.record(scan, [], [finding(key=f"tcp://192.0.2.{i}:22") for i in range(50)])
    corrected = {"fr": Translation("titre corrigé")}
    store.record(scan, [], [finding(key="tcp://192.0.2.99:22", translations=corrected)])
    store.finish_scan(scan, "complete")
    # Then two rows of texts serve 51 findings, and each finding reads back its own
    assert count(db, "SELECT COUNT(*) FROM rule_texts") == 2
    by_key = {f.resource_key: f for f in store.findings(scan)}
    assert by_key["tcp://192.0.2.99:22"].title_in("fr") == "titre corrigé"
    assert by_key["tcp://192.0.2.1:22"].title_in("fr") == "titre"
    assert dict(by_key["tcp://192.0.2.1:22"].controls) == {"cis-v8": ("4.4",)}
    # And another process writing the same rule reuses the row
    other = Store(db)
    other_scan = begin(other)
    other.record(other_scan, [], [finding()])
    assert count(db, "SELECT COUNT(*) FROM rule_texts") == 2


def test_a_rolled_back_record_leaves_no_dangling_rule_texts(tmp_path: Path) -> None:
    # Given a record that fails after its rule's texts were inserted (a NOT NULL column)
    store = Store(tmp_path / "r.db")
    scan = begin(store)
    broken = finding(rule="LAYOUT-NEW", resource_type=None)
    with pytest.raises(StoreError, match="NOT NULL constraint failed"):
        store.record(scan, [], [broken])
    # When the same rule is written again
    store.record(scan, [], [finding(rule="LAYOUT-NEW")])
    store.finish_scan(scan, "complete")
    # Then it refers to texts that exist
    (read,) = store.findings(scan)
    assert read.title == "title of LAYOUT-NEW"


def test_a_batch_keeps_each_record_whole_and_commits_them_together(tmp_path: Path) -> None:
    # Given a batch in which one record fails halfway (a NOT NULL column)
    db = tmp_path / "r.db"
    store = Store(db)
    scan = begin(store)
    with store.batch():
        store.record(scan, [], [finding(key="tcp://192.0.2.1:22")])
        with pytest.raises(StoreError, match="NOT NULL constraint failed"):
            store.record(scan, [], [finding(rule="LAYOUT-NEW", resource_type=None)])
        store.record(scan, [], [finding(key="tcp://192.0.2.2:22")])
        # nothing is visible to another reader before the batch ends
        assert count(db, "SELECT COUNT(*) FROM findings") == 0
    # Then the two whole records are in, and nothing of the failed one
    assert count(db, "SELECT COUNT(*) FROM findings") == 2
    assert count(db, "SELECT COUNT(*) FROM rule_texts WHERE title = 'title of LAYOUT-NEW'") == 0


def test_a_batch_cut_short_loses_only_itself_and_leaves_no_dangling_rule_texts(
    tmp_path: Path,
) -> None:
    # Given a first batch written, and a second one cut short (Ctrl-C) after a record
    # whose rule's texts were new
    db = tmp_path / "r.db"
    store = Store(db)
    scan = begin(store)
    with store.batch():
        store.record(scan, [], [finding(key="tcp://192.0.2.1:22")])
    with pytest.raises(KeyboardInterrupt), store.batch():
        store.record(scan, [], [finding(rule="LAYOUT-CUT", key="tcp://192.0.2.2:22")])
        raise KeyboardInterrupt
    # Then the first batch stays and the second is gone whole
    assert count(db, "SELECT COUNT(*) FROM findings") == 1
    # And the same rule written again refers to texts that exist
    store.record(scan, [], [finding(rule="LAYOUT-CUT", key="tcp://192.0.2.3:22")])
    store.finish_scan(scan, "complete")
    titles = sorted(f.title for f in store.findings(scan))
    assert titles == ["title of LAYOUT-001", "title of LAYOUT-CUT"]


def test_evidence_keeps_integers_past_64_bits_and_text(tmp_path: Path) -> None:
    # Given evidence with a certificate serial number (20 bytes), accents and nesting
    serial = int("7f" + "ab" * 19, 16)
    evidence = {"serial": serial, "subject": "CN=hôpital \u2028", "chain": [{"n": 1}, None]}
    store = Store(tmp_path / "r.db")
    scan = begin(store)
    store.record(scan, [], [finding(evidence=evidence), finding(rule="LAYOUT-2", evidence=3.5)])
    store.finish_scan(scan, "complete")
    # Then it reads back equal, the big integer exact
    found = {f.rule_id: f.evidence for f in store.findings(scan)}
    assert found["LAYOUT-001"] == evidence
    assert found["LAYOUT-001"]["serial"] == serial
    assert found["LAYOUT-2"] == 3.5


def _schema_1_store(db: Path) -> None:
    """A store written by the first schema: two scans, a failure that is then fixed."""
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    columns = (
        "scan_id, fingerprint, rule_id, policy, title, resource_type, resource_key, target, "
        "system, status, severity, message, evidence, controls, remediation, reason, history, "
        "first_seen, title_fr, remediation_fr"
    )
    for scan_id, status in ((1, "fail"), (2, "fail")):
        conn.execute(
            "INSERT INTO scans (id, started_at, finished_at, status) VALUES (?,?,?,?)",
            (scan_id, f"2026-01-0{scan_id}T08:00:00+00:00", "x", "complete"),
        )
        for key in ("tcp://192.0.2.1:22", "tcp://192.0.2.2:22"):
            conn.execute(
                f"INSERT INTO findings ({columns}) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (scan_id, fingerprint_for("LAYOUT-001", key), "LAYOUT-001", "layout",
                 "old title", "net.service", key, "ports://192.0.2.1", "sys", status,
                 "high", "m", '{"port": 22, "big": 123456789012345678901234567890}',
                 '{"cis-v8": ["4.4"]}', "close it", None,
                 "new" if scan_id == 1 else "open", "2026-01-01T08:00:00+00:00",
                 "titre", "fermer"),
            )  # fmt: skip
    conn.execute(
        "INSERT INTO finding_state (fingerprint, last_scan_id, last_status, ever_failed, "
        "first_seen, target) SELECT fingerprint, 2, 'fail', 1, first_seen, target "
        "FROM findings WHERE scan_id = 2"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_schema_1_store_is_carried_over_whole(tmp_path: Path) -> None:
    # Given a store written with schema 1
    db = tmp_path / "old.db"
    _schema_1_store(db)
    # When the current version opens it
    store = Store(db)
    # Then every finding reads back as written, texts and evidence included
    old = store.findings(2)
    assert [(f.title, f.title_in("fr"), f.remediation_in("fr"), f.lifecycle) for f in old] == [
        ("old title", "titre", "fermer", Lifecycle.OPEN)
    ] * 2
    assert old[0].evidence == {"port": 22, "big": 123456789012345678901234567890}
    assert count(db, "SELECT COUNT(*) FROM findings_full WHERE title_fr = 'titre'") == 4
    assert store.find_fingerprint(old[0].fingerprint[:10])[1:] == (
        "LAYOUT-001",
        old[0].resource_key,
    )
    # And a new scan that observes the target whole resolves the port that closed
    scan = begin(store)
    still = finding(key="tcp://192.0.2.1:22")
    present = Resource("net.service", still.resource_key, still.target, "sys", {"port": 22})
    stamped = store.record(
        scan, [present], [still], observed=Observed(still.target, frozenset({"LAYOUT-001"}))
    )
    store.finish_scan(scan, "complete")
    assert sorted((f.resource_key, f.status, f.lifecycle) for f in stamped) == [
        ("tcp://192.0.2.1:22", Status.FAIL, Lifecycle.OPEN),
        ("tcp://192.0.2.2:22", Status.PASS, Lifecycle.RESOLVED),
    ]
    groups = store.compare(2, scan)
    assert [f.resource_key for f in groups["resolved"]] == ["tcp://192.0.2.2:22"]
    assert [f.resource_key for f in groups["still_open"]] == ["tcp://192.0.2.1:22"]
    assert groups["new"] == groups["not_evaluated"] == []


def test_a_read_command_migrates_a_schema_1_store_and_touches_no_scan(tmp_path: Path) -> None:
    # Given a schema 1 store whose second scan's process is gone (still 'running')
    db = tmp_path / "old.db"
    _schema_1_store(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE scans SET status = 'running', pid = NULL WHERE id = 2")
    conn.close()
    # When a reading command opens it
    store = open_for_reading(db)
    # Then it reads the migrated store, read-only, and shows the scan interrupted
    assert store.readonly and store.is_current
    assert store.scan(2).status == "interrupted" and len(store.findings(2)) == 2
    store.close()
    # And the file holds the new schema but the scan as it was: only migration wrote
    assert count(db, "PRAGMA user_version") == len(MIGRATIONS)
    assert count(db, "SELECT COUNT(*) FROM scans WHERE status = 'running'") == 1


@pytest.mark.parametrize("cache", [0, 250_000], ids=["looked-up", "in-memory"])
def test_history_reads_every_earlier_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: int
) -> None:
    # Given a writer that keeps no states in memory, or all of them
    monkeypatch.setattr("audit.store.write.STATE_CACHE", cache)
    # When one finding fails, fails, passes, fails again, errors, across five scans
    store = Store(tmp_path / "r.db")
    lifecycles = []
    for status in (Status.FAIL, Status.FAIL, Status.PASS, Status.FAIL, Status.ERROR):
        scan = begin(store)
        (stamped,) = store.record(scan, [], [finding(status=status)])
        store.finish_scan(scan, "complete")
        lifecycles.append((stamped.lifecycle, stamped.first_seen is not None))
    # Then each scan reads the history of the ones before it
    assert lifecycles == [
        (Lifecycle.NEW, True),
        (Lifecycle.OPEN, True),
        (Lifecycle.RESOLVED, False),
        (Lifecycle.REOPENED, True),
        (None, True),  # an error keeps when the open problem was first seen
    ]


def test_an_unchanged_finding_refers_to_its_earlier_row(tmp_path: Path) -> None:
    # Given a failure seen in four scans: new, open, open, then with other evidence
    db = tmp_path / "r.db"
    store = Store(db)
    resource = Resource("net.service", "tcp://192.0.2.1:22", "ports://192.0.2.1", "sys", {"p": 22})
    scans = []
    for evidence in ("a", "a", "a", "b"):
        scan = begin(store)
        store.record(scan, [resource], [finding(evidence=evidence)])
        store.finish_scan(scan, "complete")
        scans.append(scan)
    # Then rows are written when the lifecycle or the evidence changed, and only then
    assert count(db, "SELECT COUNT(*) FROM findings") == 3
    assert count(db, "SELECT COUNT(*) FROM scan_findings") == 4
    assert count(db, "SELECT COUNT(*) FROM resources") == 1
    # And every scan reads back whole, as its own
    read = [store.findings(scan)[0] for scan in scans]
    assert [(f.scan_id, f.lifecycle, f.evidence) for f in read] == [
        (scans[0], Lifecycle.NEW, "a"),
        (scans[1], Lifecycle.OPEN, "a"),
        (scans[2], Lifecycle.OPEN, "a"),
        (scans[3], Lifecycle.OPEN, "b"),
    ]
    assert [store.resources(scan) for scan in scans] == [[resource]] * 4
    assert count(db, f"SELECT COUNT(*) FROM findings_full WHERE scan_id = {scans[2]}") == 1
    # And a diff between two scans sharing the row sees it still open
    groups = store.compare(scans[1], scans[2])
    assert [f.scan_id for f in groups["still_open"]] == [scans[2]]


@pytest.mark.parametrize("unchanged_first", [True, False], ids=["reference-first", "new-first"])
def test_a_repeat_keeps_its_last_record_when_one_is_a_reference(
    tmp_path: Path, unchanged_first: bool
) -> None:
    # Given a passing finding recorded in scan 1, then twice in scan 2: once as it was
    # (a reference to scan 1's row), once changed
    store = Store(tmp_path / "r.db")
    first = begin(store)
    store.record(first, [], [finding(message="same", status=Status.PASS)])
    store.finish_scan(first, "complete")
    second = begin(store)
    messages = ["same", "changed"] if unchanged_first else ["changed", "same"]
    for message in messages:
        store.record(second, [], [finding(message=message, status=Status.PASS)])
    store.finish_scan(second, "complete")
    # Then scan 2 holds its last record, and scan 1 is unchanged
    assert [f.message for f in store.findings(second)] == [messages[-1]]
    assert [f.message for f in store.findings(first)] == ["same"]


def test_a_scan_closed_by_another_writer_counts_as_history_at_once(tmp_path: Path) -> None:
    # Given two writers: scan 1 still running in one, scan 2 running in the other
    db = tmp_path / "r.db"
    first, second = Store(db), Store(db)
    one = begin(first)
    two = begin(second)
    first.record(one, [], [finding(key="tcp://192.0.2.7:22")])
    second.record(two, [], [finding(key="tcp://192.0.2.8:22")])  # second reads its history
    # When scan 1 closes, and scan 2 then writes the finding scan 1 saw failing
    first.finish_scan(one, "complete")
    (stamped,) = second.record(two, [], [finding(key="tcp://192.0.2.7:22")])
    # Then scan 2 sees it as open since scan 1, not as new
    assert stamped.lifecycle is Lifecycle.OPEN


def _schema_2_store(db: Path) -> None:
    """A store written by schema 2: two scans of one failing finding and its resource
    (JSON as rempart writes it, so an unchanged finding can refer to its row)."""
    conn = sqlite3.connect(db)
    for script in MIGRATIONS[:2]:
        assert isinstance(script, str)
        conn.executescript(script)
    conn.execute(
        "INSERT INTO rule_texts VALUES (1, 'layout', 'old title', '{\"cis-v8\":[\"4.4\"]}', "
        "'close it', 'titre', 'fermer')"
    )
    key = "tcp://192.0.2.1:22"
    fp = fingerprint_for("LAYOUT-001", key)
    for scan_id in (1, 2):
        conn.execute(
            "INSERT INTO scans (id, started_at, finished_at, status) VALUES (?,?,?,?)",
            (scan_id, f"2026-02-0{scan_id}T08:00:00+00:00", "x", "complete"),
        )
        conn.execute(
            "INSERT INTO resources VALUES (?,?,?,?,?,?,?)",
            (scan_id, key, "net.service", "ports://192.0.2.1", "sys", '{"port":22}', "{}"),
        )
        conn.execute(
            "INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (scan_id, fp, "LAYOUT-001", 1, "net.service", key, "ports://192.0.2.1", "sys",
             "fail", "high", "m", '{"port":22}', None, "new" if scan_id == 1 else "open",
             "2026-02-01T08:00:00+00:00"),
        )  # fmt: skip
    conn.execute(
        "INSERT INTO finding_state VALUES (?, 2, 'fail', 1, '2026-02-01T08:00:00+00:00', "
        "'ports://192.0.2.1', 2)",
        (fp,),
    )
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()


def test_a_schema_2_store_is_carried_over_and_refers_to_its_rows(tmp_path: Path) -> None:
    # Given a store written with schema 2
    db = tmp_path / "old.db"
    _schema_2_store(db)
    # When the current version opens it and records two more scans, unchanged
    store = Store(db)
    assert store.is_current and count(db, "PRAGMA user_version") == len(MIGRATIONS)
    (resource,) = store.resources(2)
    old = store.findings(2)[0]
    scans, stamped = [], []
    for _ in range(2):
        scan = begin(store)
        stamped += store.record(scan, [resource], [old.evolve(lifecycle=None, first_seen=None)])
        store.finish_scan(scan, "complete")
        scans.append(scan)
    # Then history continues from the old rows
    assert {(f.lifecycle, f.first_seen) for f in stamped} == {(Lifecycle.OPEN, old.first_seen)}
    # And the first new scan writes the finding once more (old rows have no digest), the
    # next refers to it; the resource's row is referred to from the start
    assert count(db, "SELECT COUNT(*) FROM findings") == 3
    assert count(db, "SELECT COUNT(*) FROM resources") == 2
    assert count(db, "SELECT COUNT(*) FROM scan_findings") == 4
    for scan in scans:
        assert [f.scan_id for f in store.findings(scan)] == [scan]
        assert store.findings(scan)[0].title_in("fr") == "titre"
        assert store.resources(scan) == [resource]
        assert store.scan(scan).counts["resources"] == 1
    assert count(db, "SELECT COUNT(*) FROM findings_full WHERE title = 'old title'") == 4


def test_a_schema_3_store_keeps_its_rule_texts_per_language(tmp_path: Path) -> None:
    # Given a store at schema 3, whose rule texts had French columns (one rule with
    # French texts, one without)
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    for migration in MIGRATIONS[:3]:
        if isinstance(migration, str):
            conn.executescript(migration)
        else:
            migration(conn)
    conn.execute(
        "INSERT INTO rule_texts VALUES (7, 'layout', 'title', '{\"cis-v8\":[\"4.4\"]}', "
        "'close it', 'titre', 'fermer')"
    )
    conn.execute("INSERT INTO rule_texts VALUES (9, 'layout', 'other', '{}', 'fix', '', '')")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    # When the current version opens it
    store = Store(db)
    # Then the ids are kept, French is a translation, and no column names a language
    rows = sqlite3.connect(db).execute("SELECT id, translations FROM rule_texts").fetchall()
    assert rows == [
        (7, '{"fr":{"message":"","remediation":"fermer","title":"titre"}}'),
        (9, "{}"),
    ]
    columns = {r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(rule_texts)")}
    assert not any(c.endswith("_fr") for c in columns)
    # And a scan writing the same rule again finds its row (one encoding of texts)
    scan = begin(store)
    same = finding(key="tcp://192.0.2.1:22", title="title", remediation="close it")
    store.record(scan, [], [same])
    store.finish_scan(scan, "complete")
    assert count(db, "SELECT COUNT(*) FROM rule_texts") == 2
    assert count(db, "SELECT texts FROM findings") == 7
    assert store.findings(scan)[0].remediation_in("fr") == "fermer"
    assert count(db, "SELECT COUNT(*) FROM findings_full WHERE title_fr = 'titre'") == 1


def _history(store: Store, statuses: list[Status]) -> list[int]:
    """One scan per status of one finding, plus a second finding that always passes and
    a resource that never changes; an acceptance on the way."""
    resource = Resource("net.service", "tcp://192.0.2.1:22", "ports://192.0.2.1", "sys", {"p": 22})
    scans = []
    for status in statuses:
        scan = begin(store)
        passing = finding(rule="LAYOUT-PASS", status=Status.PASS)
        store.record(scan, [resource], [finding(status=status), passing])
        store.finish_scan(scan, "complete")
        scans.append(scan)
    return scans


def test_prune_keeps_the_latest_scans_acceptances_the_trail_and_history(tmp_path: Path) -> None:
    # Given six scans: a failure fixed in scan 3, failing again in scan 6; an acceptance
    from datetime import date, timedelta

    db = tmp_path / "r.db"
    store = Store(db)
    fail, ok = Status.FAIL, Status.PASS
    scans = _history(store, [fail, fail, ok, ok, ok, fail])
    store.accept(fingerprint_=finding().fingerprint, rule_id="LAYOUT-001",
                 resource_key=finding().resource_key, owner="o", reason="r",
                 until=date.today() + timedelta(days=30))  # fmt: skip
    kept = {scan: store.findings(scan) for scan in scans[-2:]}
    events, acceptances = store.events(), store.acceptances()
    # When all but the two latest scans are pruned
    result = store.prune(2)
    # Then four scans went, and the rows only they referred to
    assert result.scans == tuple(scans[:4])
    assert [s.id for s in store.scans()] == scans[-2:]
    assert {scan: store.findings(scan) for scan in scans[-2:]} == kept
    assert store.resources(scans[-1])[0].key == "tcp://192.0.2.1:22"
    assert count(db, "SELECT COUNT(*) FROM scan_findings") == 4
    # And the trail and the acceptances are whole
    assert store.events() == events and store.acceptances() == acceptances
    # And history goes on: the failure of scan 6 is still open in the next scan
    (again, _) = store.record(begin(store), [], [finding(), finding(rule="LAYOUT-PASS", status=ok)])
    assert again.lifecycle is Lifecycle.OPEN
    # And pruning again keeps as much: nothing more to drop
    assert store.prune(3).scans == ()


def test_prune_keeps_the_row_of_a_finding_last_seen_in_a_pruned_scan(tmp_path: Path) -> None:
    # Given a failure seen only in the first of three scans
    store = Store(tmp_path / "r.db")
    first = begin(store)
    store.record(first, [], [finding(key="tcp://192.0.2.9:22")])
    store.finish_scan(first, "complete")
    _history(store, [Status.PASS, Status.PASS])
    # When the first scan is pruned
    assert store.prune(2).scans == (first,)
    # Then the finding keeps its history: failing again, it is open, not new
    (again,) = store.record(begin(store), [], [finding(key="tcp://192.0.2.9:22")])
    assert again.lifecycle is Lifecycle.OPEN
    assert store.find_fingerprint(again.fingerprint)[2] == "tcp://192.0.2.9:22"


def test_db_prune_command(tmp_path: Path) -> None:
    # Given a store of three scans
    import subprocess
    import sys

    db = tmp_path / "r.db"
    store = Store(db)
    scans = _history(store, [Status.FAIL, Status.PASS, Status.FAIL])
    store.close()
    # When the command keeps one
    command = [sys.executable, "-m", "audit", "db", "prune", "--keep", "1", "--db", str(db)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    # Then it says what it did, and one scan is left
    assert done.returncode == 0, done.stderr
    assert "pruned 2 scan(s)" in done.stderr
    assert [s.id for s in open_for_reading(db).scans()] == scans[-1:]
    # And a missing store or a --keep of 0 is refused
    missing = [*command[:-1], str(tmp_path / "none.db")]
    assert subprocess.run(missing, capture_output=True, check=False).returncode == 2
    zero = [*command[:5], "0", *command[6:]]
    assert subprocess.run(zero, capture_output=True, check=False).returncode == 2


def scripted(store: Store, lots: bool) -> list[tuple[str, str, str | None]]:
    """Three scans of two targets, written record by record or a lot at a time: a failure
    that stays, one that is resolved, a resource that vanishes, a fingerprint reached
    through two targets, a resource listed by both."""
    port = Resource("net.service", "tcp://192.0.2.1:22", "ports://192.0.2.1", "sys", {"p": 22})
    web = Resource("net.service", "tcp://192.0.2.1:80", "ports://192.0.2.1", "sys", {"p": 80})
    rounds = [
        [([port, web], [finding(), finding(key=web.key)]), ([port], [finding()])],
        [([port], [finding(), finding("LAYOUT-2", status=Status.PASS)]), ([], [])],
        [([port], [finding(status=Status.PASS)]), ([port], [finding("LAYOUT-2")])],
    ]
    seen = []
    for records in rounds:
        scan = begin(store)
        items = [
            (resources, found, Observed("ports://192.0.2.1", frozenset({"LAYOUT-001", "LAYOUT-2"})))
            for resources, found in records
        ]
        if lots:
            stamped = store.record_many(scan, items)
        else:
            stamped = [store.record(scan, r, f, observed=o) for r, f, o in items]
        store.finish_scan(scan, "complete")
        seen += [(f.fingerprint, f.status.value, f.lifecycle and f.lifecycle.value)
                 for lot in stamped for f in lot]  # fmt: skip
        seen += [(f.fingerprint, f.status.value, f.lifecycle and f.lifecycle.value)
                 for f in store.findings(scan)]  # fmt: skip
    return seen


def test_records_written_a_lot_at_a_time_are_those_written_one_by_one(tmp_path: Path) -> None:
    one, lot = Store(tmp_path / "one.db"), Store(tmp_path / "lot.db")
    assert scripted(lot, lots=True) == scripted(one, lots=False)
    for table in ("findings", "resources", "scan_findings", "scan_resources", "finding_events"):
        sql = f"SELECT COUNT(*) FROM {table}"
        assert count(tmp_path / "lot.db", sql) == count(tmp_path / "one.db", sql), table
    events = "SELECT event, COUNT(*) FROM finding_events GROUP BY event ORDER BY event"
    with sqlite3.connect(tmp_path / "lot.db") as a, sqlite3.connect(tmp_path / "one.db") as b:
        assert a.execute(events).fetchall() == b.execute(events).fetchall()
        # the script exercised both: failures new, and resolved (one by its resource vanishing)
        assert {event for event, _ in a.execute(events)} == {"new", "resolved"}
    gone = "SELECT COUNT(*) FROM findings WHERE message LIKE 'resolved: the resource is no%'"
    assert count(tmp_path / "lot.db", gone) == count(tmp_path / "one.db", gone) > 0


def test_a_bad_record_in_a_lot_fails_alone(tmp_path: Path) -> None:
    # Given a lot whose middle record cannot be written (a NOT NULL column)
    db = tmp_path / "r.db"
    store = Store(db)
    scan = begin(store)
    nothing: list[Resource] = []
    good = (nothing, [finding(key="tcp://192.0.2.1:22")], None)
    bad = (nothing, [finding(rule="LAYOUT-BAD", resource_type=None)], None)
    later = (nothing, [finding(key="tcp://192.0.2.2:22")], None)
    # When it is written, its error is raised
    with store.batch(), pytest.raises(StoreError, match="NOT NULL constraint failed"):
        store.record_many(scan, [good, bad, later])
    # Then the records on both sides of it are in, whole, and nothing of it
    assert count(db, "SELECT COUNT(*) FROM findings") == 2
    assert count(db, "SELECT COUNT(*) FROM rule_texts WHERE title = 'title of LAYOUT-BAD'") == 0
