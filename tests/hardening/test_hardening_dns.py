"""A DNS server that never answers: names cost a bounded time, the scan goes on.

Needs root and ``unshare``: the scenario (:mod:`tests.hardening.dns_blackhole`) runs in
its own network and mount namespace, where ``/etc/resolv.conf`` points at a black hole
on 127.0.0.1:53, so the system resolver really waits (10 s per lookup here) and nothing
else on the machine is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

SCENARIO = Path(__file__).with_name("dns_blackhole.py")
RESOLVE_S, TIMEOUT_S = 5.0, 3.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root and unshare"
    ),
]


def test_names_that_never_resolve_are_bounded_errors(tmp_path: Path) -> None:
    # Given a resolver that never answers, twelve TLS names, a mail name and a ports
    # name under the declared domain, and one healthy endpoint by address
    run = subprocess.run(
        ["unshare", "-mn", "--", sys.executable, str(SCENARIO), str(tmp_path)],
        capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    in_domain, no_domain = (json.loads(line) for line in run.stdout.splitlines())
    # Then the scan ends within the scope guard's lookup time plus about one timeout
    assert in_domain["code"] == 0, in_domain["err"]
    assert in_domain["elapsed"] < RESOLVE_S + TIMEOUT_S * 2 + 3, in_domain["elapsed"]
    by_target: dict[str, set[tuple[str, str | None]]] = {}
    for target, status, reason in in_domain["findings"]:
        by_target.setdefault(target, set()).add((status, reason))
    # each name is an error with a reason, and the healthy endpoint was judged
    names = [t for t in by_target if "hang.test" in t]
    assert len(names) == 14
    for target in names:
        assert {status for status, _ in by_target[target]} == {"error"}, target
        assert {reason for _, reason in by_target[target]} <= {"unreachable", "timeout"}
    healthy = next(t for t in by_target if "127.0.0.1" in t)
    assert {"pass", "fail"} & {status for status, _ in by_target[healthy]}
    # And without a declared domain the names cannot be shown in scope: exit 2, quickly
    assert no_domain["code"] == 2 and "does not resolve" in no_domain["err"]
    assert no_domain["elapsed"] < RESOLVE_S + 3, no_domain["elapsed"]
