"""End to end through the CLI: a flawed lab account, then the same account fixed.

The lab runs in its own process; ``rempart scan`` runs as a real subprocess against it.
No secret may reach the store, the JSON report or the logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks.aws.lab import LAB_SECRET_KEY, Lab

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def lab_process(aws_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    child = subprocess.Popen(
        [sys.executable, str(HERE / "lab_process.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **aws_env},
    )
    assert child.stdout is not None and child.stdin is not None
    url = _line(child, "http://127.0.0.1:")
    yield child, url
    child.stdin.write("stop\n")
    child.stdin.close()
    child.wait(timeout=30)


def _line(child: subprocess.Popen[str], prefix: str) -> str:
    """The next line starting with ``prefix`` (moto prints its own notices on stdout)."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"the lab process ended before printing {prefix!r}")


def _scan(url: str, tmp: Path, name: str, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    out = tmp / f"{name}.json"
    cmd = [
        sys.executable,
        "-m",
        "audit",
        "scan",
        f"aws://?endpoint={url}&regions=eu-west-3",
        "-p",
        "aws-baseline",
        "-p",
        "cis-aws-foundations",
        "-o",
        str(out),
        "--db",
        str(tmp / "r.db"),
    ]
    done = subprocess.run(
        cmd, check=False, capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done.stdout + done.stderr


def _status(report: dict[str, Any], rule: str, key_part: str) -> set[str]:
    return {
        f["status"]
        for f in report["findings"]
        if f["rule_id"] == rule and key_part in f["resource_key"]
    }


def _key_of(report: dict[str, Any], type_: str, fact: str, value: Any) -> str:
    (key,) = [
        r["key"]
        for r in report["resources"]
        if r["type"] == type_ and r["facts"].get(fact) == value
    ]
    return str(key)


def test_scan_finds_planted_flaws_passes_clean_twins_then_sees_the_fix(
    lab_process: tuple[subprocess.Popen[str], str], tmp_path: Path, aws_env: dict[str, str]
) -> None:
    child, url = lab_process
    planted = Lab().planted
    before, logs = _scan(url, tmp_path, "before", aws_env)

    assert _status(before, "AWS-S3-101", planted.public_bucket) == {"fail"}
    assert _status(before, "AWS-S3-101", planted.private_bucket) == {"pass"}
    admin_sg = _key_of(before, "aws.ec2.security_group", "name", "lab-open-admin")
    web_sg = _key_of(before, "aws.ec2.security_group", "name", "lab-web")
    assert _status(before, "AWS-EC2-101", admin_sg) == {"fail"}
    assert _status(before, "AWS-EC2-003", admin_sg) == {"fail"}
    assert _status(before, "AWS-EC2-004", admin_sg) == {"fail"}
    assert _status(before, "AWS-EC2-101", web_sg) == {"pass"}
    assert _status(before, "AWS-EC2-104", ":volume/") == {"fail", "pass"}
    assert _status(before, "AWS-IAM-101", planted.console_user) == {"fail"}
    assert _status(before, "AWS-IAM-101", planted.clean_user) == {"skip"}
    assert _status(before, "AWS-CLOUDTRAIL-101", ":root") == {"fail"}
    assert _status(before, "AWS-IAM-014", planted.admin_policy) == {"fail"}
    # moto gaps end as errors with a reason, never as a pass or a fail
    errors = {f["rule_id"]: f for f in before["findings"] if f["status"] == "error"}
    assert errors["AWS-IAM-017"]["reason"] == "unreachable"
    assert errors["AWS-IAM-005"]["reason"] == "not_implemented"

    child.stdin.write("fix\n")  # type: ignore[union-attr]
    child.stdin.flush()  # type: ignore[union-attr]
    assert _line(child, "fixed") == "fixed"
    after, logs_after = _scan(url, tmp_path, "after", aws_env)

    assert _status(after, "AWS-S3-101", planted.public_bucket) == {"pass"}
    assert _status(after, "AWS-EC2-101", admin_sg) == {"pass"}
    assert _status(after, "AWS-CLOUDTRAIL-101", ":root") == {"pass"}
    assert _status(after, "AWS-CLOUDTRAIL-002", "lab-trail") == {"pass"}
    assert _status(after, "AWS-IAM-006", ":root") == {"pass"}
    resolved = {f["rule_id"] for f in after["findings"] if f["lifecycle"] == "resolved"}
    assert {"AWS-S3-101", "AWS-EC2-101", "AWS-CLOUDTRAIL-101"} <= resolved

    for blob in [logs, logs_after, *(p.read_bytes().decode("latin-1") for p in tmp_path.iterdir())]:
        assert LAB_SECRET_KEY not in blob
        assert "aws_secret_access_key" not in blob.lower()
