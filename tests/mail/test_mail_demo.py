"""The mail family's part of ``rempart demo``: a flawed domain, scanned, fixed, scanned."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit.lab import DemoLab, _scan_quietly
from audit.labkit.demo import DemoContext
from checks.mail.lab import demo_part

from .conftest import missing_programs

REPO = Path(__file__).resolve().parents[2]


def _statuses(db: Path, scan: int) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "audit", "findings", "--db", str(db), "--scan", str(scan),
         "--all", "--json"],
        check=True, cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return {r["rule_id"]: r["status"] for r in rows if r["rule_id"].startswith("MAIL-")}


def test_the_demo_part_shows_a_flawed_domain_and_its_fix(tmp_path: Path) -> None:
    if missing := missing_programs():
        pytest.skip(f"{', '.join(missing)} not installed (make sysdeps installs them)")
    with contextlib.ExitStack() as stack:
        part = demo_part(DemoContext(tmp_path / "mail", stack))
        assert not part.notes and part.targets and part.options["mail"]["resolvers"]
        inventory = DemoLab(tmp_path, [part]).write_inventory(tmp_path / "inventory.yaml")
        first = _scan_quietly(inventory, tmp_path / "r.db", True)
        assert part.fix is not None
        part.fix()
        second = _scan_quietly(inventory, tmp_path / "r.db", True)
    before, after = _statuses(tmp_path / "r.db", first), _statuses(tmp_path / "r.db", second)
    for rule in ("MAIL-SPF-002", "MAIL-DMARC-001", "MAIL-TLSRPT-001"):
        assert (before[rule], after[rule]) == ("fail", "pass"), rule
    assert before["MAIL-DKIM-002"] == after["MAIL-DKIM-002"] == "fail"
    assert "error" not in before.values() and "error" not in after.values()
