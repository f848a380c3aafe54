"""The store: lifecycle from history, acceptances, interruption, integrity."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.engine import ScanPlan, run_scan
from audit.errors import AcceptanceError, StoreError
from audit.models import Lifecycle, Status, Target
from audit.models import fingerprint as fingerprint_of
from audit.plugins import CheckContext
from audit.policy import load_policy
from audit.registry import Families
from audit.store import MIGRATIONS, Store, rows

HERE = Path(__file__).parent


def item(key: str, port: int, tags: list[str] | None = None) -> dict[str, Any]:
    return {"key": key, "facts": {"port": port, "tags": tags or ["owner"]}}


def plan_for(policy_file: Path, spec: dict[str, Any]) -> ScanPlan:
    policy = load_policy(policy_file, {"demo.item"})
    targets = tuple(Target(f"facts://{name}", "facts", "127.0.0.1") for name in spec)
    return ScanPlan(
        targets=targets, policies=(policy,), context=CheckContext(options={"facts": spec})
    )


def statuses(store: Store, scan_id: int) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {
        (f.rule_id, f.resource_key): (f.status.value, f.lifecycle.value if f.lifecycle else None)
        for f in store.findings(scan_id)
    }


def test_lifecycle_new_open_resolved_reopened(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given a store and three scans where item 1 fails, then is fixed, then fails again
    store = Store(tmp_path / "r.db")
    failing = {"a": {"resources": [item("item://1", 22), item("item://2", 80)]}}
    fixed = {"a": {"resources": [item("item://1", 443), item("item://2", 80)]}}
    ids = [
        run_scan(plan_for(policy_file, spec), families, store).id
        for spec in (failing, failing, fixed, failing)
    ]
    key = ("DEMO-PORT-001", "item://1")
    # Then the lifecycle follows the history
    assert statuses(store, ids[0])[key] == ("fail", "new")
    assert statuses(store, ids[1])[key] == ("fail", "open")
    assert statuses(store, ids[2])[key] == ("pass", "resolved")
    assert statuses(store, ids[3])[key] == ("fail", "reopened")
    assert statuses(store, ids[1])[("DEMO-PORT-001", "item://2")] == ("pass", None)
    first = store.findings(ids[0], rule="DEMO-PORT-001", status="fail")[0]
    second = store.findings(ids[1], rule="DEMO-PORT-001", status="fail")[0]
    assert second.first_seen == first.first_seen
    events = [e["event"] for e in store.events(first.fingerprint)]
    assert events == ["new", "resolved", "reopened"]


def test_acceptance_then_expiry(tmp_path: Path, policy_file: Path, families: Families) -> None:
    store = Store(tmp_path / "r.db")
    spec = {"a": {"resources": [item("item://1", 22)]}}
    scan_id = run_scan(plan_for(policy_file, spec), families, store).id
    finding = store.findings(scan_id, rule="DEMO-PORT-001")[0]
    today = datetime.now(UTC).date()
    acc = store.accept(
        fingerprint_=finding.fingerprint,
        rule_id=finding.rule_id,
        resource_key=finding.resource_key,
        owner="Mme Durand (RSSI)",
        reason="legacy admin access, closed in Q3",
        until=today,
    )
    assert store.findings(scan_id, rule="DEMO-PORT-001")[0].lifecycle is Lifecycle.ACCEPTED
    # An acceptance that lapsed before the scan makes the finding expired
    store.conn.execute(
        "UPDATE acceptances SET until = ? WHERE id = ?",
        ((today - timedelta(days=1)).isoformat(), acc.id),
    )
    assert store.findings(scan_id, rule="DEMO-PORT-001")[0].lifecycle is Lifecycle.EXPIRED
    store.unaccept(acc.id)
    assert store.findings(scan_id, rule="DEMO-PORT-001")[0].lifecycle is Lifecycle.NEW


def test_findings_read_again_are_kept_until_the_file_changes(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given a scan whose findings were read once, and a second connection to the file
    store = Store(tmp_path / "r.db")
    spec = {"a": {"resources": [item("item://1", 22)]}}
    scan_id = run_scan(plan_for(policy_file, spec), families, store).id
    first = store.findings(scan_id)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    # When they are read again with nothing written: the kept answer, no findings query
    assert store.findings(scan_id) == first
    # nor after the scan's scores are stored (a write that changes no finding)
    store.set_scores(scan_id, {"index": 50})
    assert store.findings(scan_id) == first
    assert not [s for s in statements if rows.FINDINGS_JOIN in s]
    # When another process accepts the risk, even during such a write: the next read sees it
    finding = next(f for f in first if f.status is Status.FAIL)
    other = Store(tmp_path / "r.db")
    with store._reader.findings_kept():
        other.accept(
            fingerprint_=finding.fingerprint,
            rule_id=finding.rule_id,
            resource_key=finding.resource_key,
            owner="Mme Durand (RSSI)",
            reason="legacy admin access, closed in Q3",
            until=datetime.now(UTC).date(),
        )
    other.close()
    again = {f.fingerprint: f for f in store.findings(scan_id)}
    assert again[finding.fingerprint].lifecycle is Lifecycle.ACCEPTED
    # And a write on this connection is seen as well
    store.conn.execute("UPDATE acceptances SET revoked_at = '2026-01-01T00:00:00+00:00'")
    revoked = {f.fingerprint: f for f in store.findings(scan_id)}
    assert revoked[finding.fingerprint].lifecycle is Lifecycle.NEW


@pytest.mark.parametrize(("days", "message"), [(-1, "in the past"), (3 * 366 + 1, "3 years")])
def test_acceptance_expiry_is_bounded(tmp_path: Path, days: int, message: str) -> None:
    store = Store(tmp_path / "r.db")
    with pytest.raises(AcceptanceError, match=message):
        store.accept(
            fingerprint_="f",
            rule_id="R-X-001",
            resource_key="k",
            owner="o",
            reason="r",
            until=date.today() + timedelta(days=days),
        )


def test_event_trail_is_append_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.accept(
        fingerprint_="f",
        rule_id="R-X-001",
        resource_key="k",
        owner="o",
        reason="r",
        until=date.today(),
    )
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM finding_events")


def test_errors_are_stored_with_reasons(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    store = Store(tmp_path / "r.db")
    spec = {
        "down": {"problem": "timeout"},
        "a": {"resources": [{**item("item://1", 80), "unknown": {"tags": "access_denied"}}]},
    }
    scan_id = run_scan(plan_for(policy_file, spec), families, store).id
    found = {(f.rule_id, f.resource_key): f for f in store.findings(scan_id)}
    assert found[("DEMO-PORT-001", "facts://down")].reason.value == "timeout"
    assert found[("DEMO-TAG-001", "facts://down")].status is Status.ERROR
    # only the rule that reads the unknown fact is an error; the other one is judged
    assert found[("DEMO-TAG-001", "item://1")].reason.value == "access_denied"
    assert found[("DEMO-PORT-001", "item://1")].status is Status.PASS


def test_store_schema_is_versioned(tmp_path: Path) -> None:
    Store(tmp_path / "r.db").close()
    conn = sqlite3.connect(tmp_path / "r.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path / "r.db")


def test_unwritable_store_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "no" / "such" / "dir" / "r.db")


SLOW_SCAN = """
import sys, json
sys.path.insert(0, {here!r})
from fakes import FACTS_FAMILY
from audit.engine import ScanPlan, run_scan
from audit.models import Target
from audit.plugins import CheckContext
from audit.policy import load_policy
from audit.registry import Families
from audit.store import Store
from pathlib import Path
spec = {{f"t{{i}}": {{"sleep": 0.05 * i, "resources": [
    {{"key": f"item://{{i}}", "facts": {{"port": 22, "tags": []}}}}]}} for i in range(200)}}
plan = ScanPlan(targets=tuple(Target(f"facts://t{{i}}", "facts", "127.0.0.1") for i in range(200)),
                policies=(load_policy(Path({policy!r}), {{"demo.item"}}),),
                context=CheckContext(options={{"facts": spec}}), concurrency=4)
fams = Families({{"facts": FACTS_FAMILY}}, {{"facts": FACTS_FAMILY}})
run_scan(plan, fams, Store({db!r}))
"""


def test_kill_9_leaves_a_whole_store_and_an_interrupted_scan(
    tmp_path: Path, policy_file: Path
) -> None:
    # Given a long scan in another process
    db = tmp_path / "r.db"
    code = SLOW_SCAN.format(here=str(HERE.parent), policy=str(policy_file), db=str(db))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=os.getcwd())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if db.exists():
            with sqlite3.connect(db) as conn:
                try:
                    n = conn.execute("SELECT COUNT(*) FROM findings").fetchone()[0]
                except sqlite3.OperationalError:
                    continue
            if n >= 10:
                break
    # When it is killed with -9 halfway
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Then the store is whole, every finished target has both its findings, and the
    # next command shows the scan as interrupted
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    per_resource = conn.execute(
        "SELECT resource_key, COUNT(*) FROM findings GROUP BY resource_key"
    ).fetchall()
    assert per_resource and all(count == 2 for _, count in per_resource)
    store = Store(db)
    scan = store.scan(1)
    assert scan.status == "interrupted"
    assert scan.counts["fail"] == 2 * len(per_resource)
    assert json.loads(conn.execute("SELECT targets FROM scans").fetchone()[0])


def test_compare_groups_by_fingerprint(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    store = Store(tmp_path / "r.db")
    first = {"a": {"resources": [item("item://1", 22), item("item://2", 22), item("item://3", 22)]}}
    second = {
        "a": {"resources": [item("item://1", 443), item("item://2", 22), item("item://4", 22)]}
    }
    old = run_scan(plan_for(policy_file, first), families, store).id
    new = run_scan(plan_for(policy_file, second), families, store).id
    groups = {
        name: sorted(f.resource_key for f in items if f.rule_id == "DEMO-PORT-001")
        for name, items in store.compare(old, new).items()
    }
    # item 3 is gone from a target observed whole: resolved (see the test below)
    assert groups == {
        "new": ["item://4"],
        "resolved": ["item://1", "item://3"],
        "still_open": ["item://2"],
        "not_evaluated": [],
    }


def test_where_is_decided_before_unknown_expect_facts(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # DEMO-TAG-001 applies where port != 25 and reads tags; tags unknown on both items
    store = Store(tmp_path / "r.db")
    spec = {
        "a": {
            "resources": [
                {**item("item://smtp", 25), "unknown": {"tags": "not_implemented"}},
                {**item("item://web", 443), "unknown": {"tags": "not_implemented"}},
                {**item("item://odd", 22), "unknown": {"port": "timeout"}},
            ]
        }
    }
    scan_id = run_scan(plan_for(policy_file, spec), families, store).id
    found = {(f.rule_id, f.resource_key): f.status.value for f in store.findings(scan_id)}
    assert found[("DEMO-TAG-001", "item://smtp")] == "skip"  # not applicable: no noise
    assert found[("DEMO-TAG-001", "item://web")] == "error"  # applies, fact unknown
    assert found[("DEMO-TAG-001", "item://odd")] == "error"  # cannot tell if it applies


def test_a_resource_gone_from_an_observed_target_is_resolved(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given item 2 failing, then gone from target a (observed whole) while target b errs
    store = Store(tmp_path / "r.db")
    first = {
        "a": {"resources": [item("item://1", 443), item("item://2", 22)]},
        "b": {"resources": [item("item://3", 22)]},
    }
    second = {"a": {"resources": [item("item://1", 443)]}, "b": {"problem": "timeout"}}
    old = run_scan(plan_for(policy_file, first), families, store).id
    new = run_scan(plan_for(policy_file, second), families, store).id
    # Then the vanished failure is resolved; the unobserved one is not evaluated
    gone = store.findings(new, rule="DEMO-PORT-001", target="facts://a")
    assert {
        (f.resource_key, f.status.value, f.lifecycle.value if f.lifecycle else None) for f in gone
    } == {("item://1", "pass", None), ("item://2", "pass", "resolved")}
    groups = store.compare(old, new)
    assert "item://2" in {f.resource_key for f in groups["resolved"]}
    assert "item://3" in {f.resource_key for f in groups["not_evaluated"]}
    # and a third scan where it is back reopens it
    third = run_scan(plan_for(policy_file, first), families, store).id
    back = store.findings(third, rule="DEMO-PORT-001", target="facts://a", status="fail")
    assert [(f.resource_key, f.lifecycle.value) for f in back] == [("item://2", "reopened")]


def test_findings_read_back_carry_every_field(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    import dataclasses

    store = Store(tmp_path / "r.db")
    scan_id = run_scan(
        plan_for(policy_file, {"a": {"resources": [item("item://1", 22)]}}), families, store
    ).id
    finding = store.findings(scan_id, rule="DEMO-PORT-001")[0]
    assert {f.name for f in dataclasses.fields(finding)} <= set(vars(finding))
    assert finding.fingerprint == fingerprint_of("DEMO-PORT-001", "item://1")
    assert finding == dataclasses.replace(finding)
