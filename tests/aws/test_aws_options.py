"""The inventory's ``aws:`` block: validated when the inventory loads, by the same parser
that builds the scan's settings; a mistake is one line naming file, line and setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from audit.plugins import CheckContext
from checks.aws import FAMILY
from checks.aws.session import parse_options, settings_for

from .conftest import parse

GOOD: dict[str, Any] = {
    "profile": "audit",
    "regions": ["eu-west-3", "eu-west-1"],
    "endpoints": {
        "s3": "https://oos.{region}.example.com",
        "ec2": "https://fcu.{region}.example.com",
    },
    "role": "arn:aws:iam::123456789012:role/audit",
    "external_id": "rempart-x1",
    "max_attempts": 2,
    "max_workers": 16,
}


def test_a_good_block_is_the_settings_a_scan_uses() -> None:
    assert FAMILY.validate_options is not None
    FAMILY.validate_options(GOOD)
    settings = parse_options(GOOD)
    assert settings.regions == ("eu-west-3", "eu-west-1")
    assert settings.endpoint_for("ec2", "eu-west-3") == "https://fcu.eu-west-3.example.com"
    assert not settings.offers("iam") and settings.offers("s3")
    assert (settings.max_attempts, settings.max_workers) == (2, 16)
    assert parse_options(None) == parse_options({})  # `aws:` with nothing under it


def test_the_target_wins_over_the_block() -> None:
    target = parse("aws://prod?regions=eu-central-1&role=arn:aws:iam::210987654321:role/x")
    settings = settings_for(target, GOOD)
    assert settings.profile == "prod" and settings.regions == ("eu-central-1",)
    assert settings.role_arn == "arn:aws:iam::210987654321:role/x"
    assert settings.external_id == "rempart-x1" and settings.max_workers == 16


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (["eu-west-3"], "must be a mapping of settings"),
        ({"regoins": ["eu-west-3"]}, "unknown setting 'regoins' (known: profile, regions"),
        ({"regions": ["eu-west-3", "Paris"]}, "regions: 'Paris' is not a region name"),
        ({"regions": [3]}, "regions: must be a list of region names"),
        ({"regions": ""}, "regions: regions is empty"),
        ({"profile": "a b"}, "profile: 'a b' is not a valid profile name"),
        ({"profile": "-x"}, "profile: '-x' is not a valid profile name"),
        ({"profile": 12}, "profile: must be a string, not int"),
        ({"role": "admin"}, "role: role must be an IAM role ARN"),
        ({"external_id": "x"}, "external_id: external_id must be 2-1224 characters"),
        ({"endpoint": "ftp://127.0.0.1"}, "endpoint: endpoint must be an http:// or https://"),
        ({"endpoint": "http://k:s@127.0.0.1"}, "endpoint: credentials do not belong"),
        ({"endpoint": "http://127.0.0.1:99999"}, "endpoint: 'http://127.0.0.1:99999': port"),
        (
            {"endpoints": {"ec2": "https://fcu.{region}.bad_host!.com"}},
            "endpoints.ec2: 'https://fcu.{region}.bad_host!.com': "
            "'fcu.{region}.bad_host!.com' is not a valid host",
        ),
        ({"endpoints": {"cloudtrial": "https://x.example"}}, "endpoints.cloudtrial: 'cloudtrial'"),
        ({"endpoints": {"s3": 443}}, "endpoints.s3: must be a URL string"),
        ({"endpoints": ["s3"]}, "endpoints: must map a service name to a URL"),
        ({"max_attempts": "many"}, "max_attempts: must be an integer from 1 to 20"),
        ({"max_workers": 0}, "max_workers: must be an integer from 1 to 64"),
        ({"max_workers": True}, "max_workers: must be an integer"),
    ],
)
def test_a_bad_block_names_the_setting(block: Any, message: str) -> None:
    assert FAMILY.validate_options is not None
    with pytest.raises(ValueError) as raised:
        FAMILY.validate_options(block)
    assert str(raised.value).startswith(message), str(raised.value)


def test_an_unvalidated_block_still_ends_as_a_problem_at_scan_time() -> None:
    ctx = CheckContext(timeout=5, options={"aws": {"regions": "Europe"}})
    (problem,) = FAMILY.collect(parse("aws://"), ctx).problems
    assert "invalid aws settings: regions:" in problem.message


INVENTORY = """\
scope:
  aws:
    accounts: ["123456789012"]
systems:
  - name: Compte de production
    owner: DSI
    targets: ["aws://?regions=eu-west-3"]
aws:
{block}
"""


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("  regions: [eu-west-3, Paris]", "aws: regions: 'Paris' is not a region name"),
        ("  endpoints: {cloudtrial: 'https://x.example'}", "aws: endpoints.cloudtrial:"),
        ("  max_workers: 500", "aws: max_workers: must be an integer from 1 to 64"),
    ],
)
def test_cli_refuses_a_bad_aws_block_before_scanning(
    tmp_path: Path, block: str, message: str
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY.format(block=block))
    done = subprocess.run(
        [sys.executable, "-m", "audit", "scan", "-i", "inventory.yaml", "--db", "r.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("rempart: error: inventory.yaml:"), line
    where, _, detail = line.removeprefix("rempart: error: ").partition(": ")
    assert int(where.split(":")[1]) in (7, 8)  # the `aws:` block
    assert detail.startswith(message), detail
    assert not (tmp_path / "r.db").exists()  # nothing was scanned
