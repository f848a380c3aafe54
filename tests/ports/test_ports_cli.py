"""End to end: ``rempart scan ports://...`` as a separate process, with the real nmap."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.store import Store
from checks.ports.lab import Lab, exposure_lab
from tests.ports.conftest import requires_nmap

RUN_TIMEOUT_S = 120


def rempart(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audit", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def banner_lab() -> Iterator[Lab]:
    """SSH and MySQL only: they greet first, so service detection takes well under 1 s."""
    with exposure_lab(names=("ssh", "mysql")) as running:
        yield running


@requires_nmap
def test_scan_gates_on_high_findings_and_writes_report_and_store(
    banner_lab: Lab, tmp_path: Path
) -> None:
    # Given an old OpenSSH and a MySQL on loopback
    db, report = tmp_path / "rempart.db", tmp_path / "x.json"
    # When they are scanned against exposure-baseline with a high gate
    done = rempart(
        "scan",
        banner_lab.uri(),
        "-p",
        "exposure-baseline",
        "--db",
        str(db),
        "-o",
        str(report),
        "--fail-on",
        "high",
        "--quiet",
    )
    # Then the gate trips (exit 1) ...
    assert done.returncode == 1, done.stderr
    ssh, mysql = banner_lab.listeners["ssh"], banner_lab.listeners["mysql"]
    data = json.loads(report.read_text())
    failed = {(f["rule_id"], f["resource_key"]) for f in data["findings"] if f["status"] == "fail"}
    assert {
        ("EXP-SSH-001", ssh.key),
        ("EXP-DB-001", mysql.key),
        ("EXP-PORT-001", ssh.key),
        ("EXP-PORT-001", mysql.key),
    } <= failed
    assert not [f for f in data["findings"] if f["status"] == "error"]
    # ... the JSON report carries the facts ...
    resources = {r["key"]: r for r in data["resources"]}
    assert resources[ssh.key]["facts"]["version"] == "5.3"
    assert resources["host://127.0.0.1"]["facts"]["open_ports"] == sorted([ssh.port, mysql.port])
    assert data["scan"]["status"] == "complete"
    # ... and the store holds the same findings
    store = Store(str(db), readonly=True)
    scan_id = store.latest_scan_id()
    stored = {(f.rule_id, f.resource_key) for f in store.findings(scan_id, status="fail")}
    assert stored == failed
    assert {r.key for r in store.resources(scan_id)} == set(resources)


@requires_nmap
def test_a_bad_ports_uri_is_refused_before_scanning(tmp_path: Path) -> None:
    done = rempart("scan", "ports://127.0.0.1?ports=1-2-3", "--db", str(tmp_path / "x.db"))
    assert done.returncode == 2
    assert "'1-2-3' is not a port" in done.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_missing_nmap_stops_the_scan_before_it_starts(tmp_path: Path) -> None:
    # PATH without nmap: the environment of a machine where it is not installed
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    done = rempart(
        "scan",
        "ports://127.0.0.1?ports=22",
        "-p",
        "exposure-baseline",
        "--db",
        str(tmp_path / "x.db"),
        env=env,
    )
    assert done.returncode == 2
    assert "nmap is not installed: apt-get install nmap" in done.stderr
    assert not (tmp_path / "x.db").exists()
