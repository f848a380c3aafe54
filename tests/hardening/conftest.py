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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class LabProcess:
    """The seeded moto lab in a process of its own (moto keeps one state per process, so a
    lab in the test process would show its resources to every other lab's tests)."""

    def __init__(self) -> None:
        from checks.aws.lab import Lab

        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "aws" / "lab_process.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, **self.environment(), "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.region = Lab().region

    @staticmethod
    def environment() -> dict[str, str]:
        from checks.aws.lab import Lab

        return {**Lab().environment(), "AWS_EC2_METADATA_DISABLED": "true"}

    def target(self) -> str:
        return f"aws://?endpoint={self.url}&regions={self.region}"

    def client(self, service: str) -> Any:
        import boto3

        env = self.environment()
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("stop\n")
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def aws_lab() -> Iterator[LabProcess]:
    """A seeded moto lab (real HTTP on 127.0.0.1), shared by the hardening tests."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN"):
            patch.delenv(name, raising=False)
        for name, value in LabProcess.environment().items():
            patch.setenv(name, value)
        lab = LabProcess()
        try:
            yield lab
        finally:
            lab.stop()
