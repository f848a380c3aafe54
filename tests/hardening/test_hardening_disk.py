"""A full disk and a read-only directory: one clear line, exit 2, a whole store, and no
partial report left behind.

Needs root and ``unshare``: the scenario (:mod:`tests.hardening.disk_full`) mounts a
2 MiB tmpfs and a read-only tmpfs in a private mount namespace, then runs real scans of
ten loopback TLS servers into them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO

SCENARIO = Path(__file__).with_name("disk_full.py")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root and unshare"
    ),
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("disk")
    run = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "--", sys.executable, str(SCENARIO),
         str(work)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def one_clear_line(result: dict[str, Any], fragment: str) -> None:
    assert result["code"] == 2, result["stderr"]
    assert result["err"].startswith("rempart: error:") and fragment in result["err"]
    assert "Traceback" not in result["stderr"]


def test_store_on_a_full_disk(outcome: dict[str, Any]) -> None:
    assert outcome["first"]["code"] == 0, outcome["first"]["stderr"]
    one_clear_line(outcome["full_store"], "database or disk is full")
    # no report from a scan that could not be stored, and no temporary file either
    assert [f for f in outcome["full_store"]["files"] if "r.json" in f] == []


def test_report_on_a_full_disk_leaves_no_partial_file(outcome: dict[str, Any]) -> None:
    one_clear_line(outcome["full_report"], "No space left on device")
    assert [f for f in outcome["full_report"]["files"] if "r.html" in f] == []


def test_the_store_is_whole_and_usable_once_space_is_back(outcome: dict[str, Any]) -> None:
    after = outcome["after"]
    assert after["code"] == 0, after["stderr"]
    store = after["store"]
    assert store["integrity"] == "ok"
    statuses = [status for _, status in store["scans"]]
    assert statuses[0] == "complete" and statuses[-1] == "complete"
    assert statuses[1] in ("failed", "interrupted")  # the scan the full disk stopped
    assert len(store["per_resource"]) == 1  # every stored target has all its findings


def test_read_only_store_and_report_directory(outcome: dict[str, Any]) -> None:
    one_clear_line(outcome["readonly_store"], "cannot open the store")
    one_clear_line(outcome["readonly_report"], "Read-only file system")
    assert outcome["readonly_report"]["files"] == []


def test_reading_commands_serve_a_store_on_a_read_only_file_system(
    outcome: dict[str, Any],
) -> None:
    for case in ("ro_findings", "ro_report"):
        assert outcome[case]["code"] == 0, outcome[case]["stderr"]
