"""Shared helpers of the hardening tests: the real ``rempart`` as a separate process.

Fault tests run the command line the way an operator or a CI job does (a child process,
its exit code, its stderr, its wall time), so a hang, a crash or a leaked secret shows
exactly as a user would meet it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit.registry import Families, load_families

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    """What one ``rempart`` process did."""

    code: int
    out: str
    err: str
    elapsed: float


def rempart(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> Run:
    """Run ``python -m audit ARGS`` in a child process and time it."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "audit", *args],
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


@pytest.fixture(scope="session")
def families() -> Families:
    """The real, installed check families (tls, smtp, ports, aws)."""
    return load_families()
