"""End to end through the CLI: the flawed project, then the same project fixed.

``rempart scan`` runs as a real subprocess against the lab (real Keystone, faked services),
with the pack and a declared scope; every rule of the pack must pass somewhere and fail
somewhere, and no secret of clouds.yaml (nor a metadata value) may reach the store, the
report or the logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from checks.openstack.lab import ADMIN_PASSWORD, AUDITOR_PASSWORD, Lab, seeded_data

POLICY = Path(__file__).parents[2] / "policies" / "openstack-baseline.yaml"


def _inventory(lab: Lab, tmp: Path) -> Path:
    path = tmp / "inventory.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "scope": {
                    "networks": ["127.0.0.1/32"],
                    "openstack": {"auth_urls": [lab.auth_url], "projects": ["lab"]},
                },
                "systems": [{"name": "Cloud", "targets": ["openstack://lab-admin"]}],
            }
        )
    )
    return path


def _scan(lab: Lab, tmp: Path, name: str) -> tuple[dict[str, Any], str]:
    out = tmp / f"{name}.json"
    cmd = [
        sys.executable, "-m", "audit", "scan", "-i", str(_inventory(lab, tmp)),
        "-p", "openstack-baseline", "-o", str(out), "--db", str(tmp / "r.db"),
    ]  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(out.read_text()), done.stdout + done.stderr


def _statuses(report: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in report["findings"]:
        found.setdefault(finding["rule_id"], set()).add(finding["status"])
    return found


def test_every_rule_passes_and_fails_then_the_fix_resolves(lab: Lab, tmp_path: Path) -> None:
    assert lab.fake is not None
    before, logs = _scan(lab, tmp_path, "before")
    statuses = _statuses(before)
    rules = [r["id"] for r in yaml.safe_load(POLICY.read_text())["rules"]]
    for rule in rules:
        assert {"pass", "fail"} <= statuses.get(rule, set()), (rule, statuses.get(rule))
    try:
        lab.fix()
        after, logs_after = _scan(lab, tmp_path, "after")
    finally:
        lab.fake.data = seeded_data(lab.planted.project_id)
    resolved = {f["rule_id"] for f in after["findings"] if f["lifecycle"] == "resolved"}
    assert {"OS-NET-101", "OS-BLK-101", "OS-OBJ-101", "OS-IMG-101"} <= resolved
    secrets = [
        ADMIN_PASSWORD,
        AUDITOR_PASSWORD,
        lab.planted.app_cred_secret,
        "hunter2",  # a server's metadata value
    ]
    blobs = [logs, logs_after] + [p.read_bytes().decode("latin-1") for p in tmp_path.iterdir()]
    for blob in blobs:
        for secret in secrets:
            assert secret not in blob


def test_a_throttled_volume_list_makes_the_rule_an_error(lab: Lab, tmp_path: Path) -> None:
    assert lab.fake is not None
    with lab.fake.fault("block-storage:GET /volumes/detail", 429):
        report, _ = _scan(lab, tmp_path, "throttled")
    findings = [f for f in report["findings"] if f["rule_id"] == "OS-BLK-101"]
    assert findings and {f["status"] for f in findings} == {"error"}
    assert {f["reason"] for f in findings} == {"throttled"}


def test_public_containers_declared_in_the_inventory_pass(lab: Lab, tmp_path: Path) -> None:
    inventory = _inventory(lab, tmp_path)
    data = yaml.safe_load(inventory.read_text())
    data["params"] = {"openstack-baseline": {"public_containers": ["public-docs"]}}
    inventory.write_text(yaml.safe_dump(data))
    out = tmp_path / "declared.json"
    done = subprocess.run(
        [sys.executable, "-m", "audit", "scan", "-i", str(inventory), "-p", "openstack-baseline",
         "-o", str(out), "--db", str(tmp_path / "d.db")],
        capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(out.read_text())
    statuses = {f["status"] for f in report["findings"] if f["rule_id"] == "OS-OBJ-101"}
    assert statuses == {"pass"}
