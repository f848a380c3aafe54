"""The CLI over the real, installed families: descriptions and permissions."""

from __future__ import annotations

import json
import subprocess
import sys


def rempart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audit", *args], capture_output=True, text=True, check=False
    )


def test_checks_permissions_aws_is_a_read_only_iam_policy() -> None:
    done = rempart("checks", "permissions", "aws")
    assert done.returncode == 0, done.stderr
    policy = json.loads(done.stdout)
    assert policy["Version"] == "2012-10-17"
    actions = [a for statement in policy["Statement"] for a in statement["Action"]]
    assert actions and all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    verbs = {action.split(":")[1] for action in actions}
    assert all(v.startswith(("Get", "List", "Describe", "Generate", "Lookup")) for v in verbs), (
        verbs
    )


def test_checks_permissions_for_a_family_without_cloud_access() -> None:
    done = rempart("checks", "permissions", "ports")
    assert done.returncode == 2 and "needs no cloud permissions" in done.stderr


def test_plugins_allow_list_limits_the_families() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "audit", "--plugins", "ports", "checks", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("ports") and "tls" not in done.stdout.split("\n")[0]
    assert "aws.s3.bucket" not in done.stdout
    refused = rempart("--plugins", "ports", "scan", "tls://localhost:1")
    assert refused.returncode == 2 and "unknown scheme 'tls'" in refused.stderr
