"""Load: 1,000 TLS endpoints and some 20,000 findings in one scan on two cores.

The endpoints are 1,000 ports of one TLS server process (:mod:`tests.hardening.many_tls`:
one selector, handshakes on worker threads, alerts as OpenSSL sends them). The whole
``rempart scan`` (anssi-tls, SQLite store, JSON and HTML reports) must finish, judge every
endpoint, and keep its peak RSS bounded; in-process, the Python heap must stay flat while
targets stream through collection, evaluation and the store (what grows is SQLite's page
cache, capped at 64 MiB, then the report, which needs the whole scan).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO

HERE = Path(__file__).parent
ENDPOINTS = 1000


def _rules(pack: str) -> int:
    """How many rules a built-in pack has (each endpoint gets one finding per rule)."""
    from audit.policy import load_policy
    from audit.registry import builtin_policies

    return len(load_policy(builtin_policies()[pack]).rules)


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "many_tls.py"), str(ENDPOINTS),
         str(tmp_path_factory.mktemp("pki"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert server.stdout is not None and server.stdin is not None
    yield json.loads(server.stdout.readline())
    server.stdin.close()
    server.wait(timeout=30)


@pytest.mark.slow
def test_a_thousand_endpoints_in_one_scan(endpoints: dict[str, Any], tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "systems:\n  - name: load\n    targets:\n"
        + "".join(f"      - tls://127.0.0.1:{p}?http_port=0\n" for p in endpoints["ports"])
    )
    started = time.perf_counter()
    scan = subprocess.Popen(
        [sys.executable, "-m", "audit", "scan", "-i", str(inventory), "-p", "anssi-tls",
         "--ca-file", endpoints["ca"], "--timeout", "30", "--db", str(tmp_path / "r.db"),
         "-o", str(tmp_path / "r.json"), "-o", str(tmp_path / "r.html"), "--quiet"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, status, usage = os.wait4(scan.pid, 0)
    wall = time.perf_counter() - started
    assert os.waitstatus_to_exitcode(status) == 0, scan.stderr.read() if scan.stderr else ""
    peak_mib = usage.ru_maxrss / 1024
    findings = json.loads((tmp_path / "r.json").read_text())["findings"]
    assert len(findings) == ENDPOINTS * _rules("anssi-tls")
    assert not [f for f in findings if f["status"] == "error"]
    assert wall < 240, wall  # measured: 27 s on two shared cores
    assert peak_mib < 512, peak_mib  # measured: 330 MiB, of which the HTML report ~180


@pytest.mark.slow
def test_the_heap_stays_flat_while_targets_stream(
    endpoints: dict[str, Any], tmp_path: Path
) -> None:
    run = subprocess.run(
        [sys.executable, str(HERE / "load_probe.py"), endpoints["ca"], str(tmp_path / "r.db"),
         *map(str, endpoints["ports"][:600])],
        capture_output=True, text=True, timeout=600, cwd=REPO, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    probe = json.loads(run.stdout.strip().splitlines()[-1])
    heap = probe["heap_mib"]
    assert len(heap) == 10 and probe["counts"]["error"] == 0
    # from the first tenth of the targets to the last, the heap grows by less than 4 MiB
    assert max(heap) - heap[0] < 4, heap
