"""What the scope decides for an aws:// target before anything is sent, and the hosts a
scan could be steered to afterwards (configured endpoint URLs, hostile region names).

The refusals themselves, with a listener that records whether any request arrived, are
in ``tests/hardening/test_hardening_scope.py``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from audit.errors import ScopeError
from audit.models import Reason
from audit.plugins import Reach, Scope
from checks.aws import FAMILY
from checks.aws.lab import Lab
from checks.aws.session import Api, Settings

from .conftest import FaultProxy, by_type, context, parse, scan

SCOPE = Scope(networks=("127.0.0.0/8",), blocks={"aws": {"accounts": ("123456789012",)}})
ELSEWHERE = "http://127.0.0.2:9"


def admit(
    raw: str, scope: Scope, cli: bool = False, block: dict[str, Any] | None = None
) -> tuple[Reach, ...]:
    assert FAMILY.admit is not None
    return FAMILY.admit(replace(parse(raw), from_command_line=cli), scope, block or {})


def test_every_endpoint_is_handed_to_the_guard_naming_who_typed_it() -> None:
    block = {"endpoint": "https://block.example.test", "endpoints": {"s3": "https://s3.test"}}
    typed = admit("aws://?endpoint=https://typed.example.test", Scope(), cli=True, block=block)
    assert typed == (Reach("https://typed.example.test", True), Reach("https://s3.test"))
    listed = admit("aws://?endpoint=https://typed.example.test", Scope(), block=block)
    assert listed == (Reach("https://typed.example.test"), Reach("https://s3.test"))
    assert admit("aws://", Scope(), block=block) == (
        Reach("https://block.example.test"),
        Reach("https://s3.test"),
    )


def test_aws_itself_is_remote_so_an_unscoped_inventory_cannot_reach_it() -> None:
    assert admit("aws://prod", Scope(), cli=True) == ()
    assert admit("aws://prod", SCOPE) == ()
    with pytest.raises(ScopeError, match="no scope declared"):
        admit("aws://prod", Scope())


def test_an_assume_role_without_an_sts_endpoint_reaches_aws_itself() -> None:
    role = "arn:aws:iam::123456789012:role/audit"
    block = {"endpoints": {"s3": "http://127.0.0.1:9"}}
    assert admit("aws://", Scope(), block=block)  # S3 alone: loopback only
    with pytest.raises(ScopeError, match="calls AWS itself"):
        admit(f"aws://?role={role}", Scope(), block=block)


def test_accounts_the_scope_refuses_are_refused_before_any_call() -> None:
    with pytest.raises(ScopeError, match="lists no AWS account"):
        admit("aws://prod", Scope(networks=("127.0.0.0/8",)))
    with pytest.raises(ScopeError, match="belongs to account 210987654321"):
        admit("aws://prod?role=arn:aws:iam::210987654321:role/audit", SCOPE)
    assert admit("aws://prod?role=arn:aws:iam::123456789012:role/audit", SCOPE) == ()


def test_endpoint_urls_configured_outside_rempart_are_ignored(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the environment names an endpoint that no scope guard looked at
    monkeypatch.setenv("AWS_ENDPOINT_URL", ELSEWHERE)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", ELSEWHERE)
    from botocore.session import Session

    # (botocore alone would follow it)
    assert Session().create_client("sts", region_name="eu-west-3").meta.endpoint_url == ELSEWHERE
    # Then a scan's client still calls only what its settings name (here AWS's own STS)
    client = Api(Settings(regions=("eu-west-3",)), 5).client("sts", "eu-west-3")
    assert "127.0.0.2" not in client.meta.endpoint_url


def _hostile_regions(operation: str, body: bytes) -> bytes:
    """A provider whose DescribeRegions slips a host into a region name."""
    if operation != "DescribeRegions":
        return body
    items = "".join(
        f"<item><regionName>{name}</regionName><regionEndpoint>e</regionEndpoint>"
        "<optInStatus>opt-in-not-required</optInStatus></item>"
        for name in ("eu-west-3", "x.attacker.example#")
    )
    return (
        '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>r</requestId><regionInfo>{items}</regionInfo></DescribeRegionsResponse>"
    ).encode()


def test_a_region_name_that_is_not_one_label_is_never_put_in_an_endpoint(lab: Lab) -> None:
    with FaultProxy(lab.url, set(), set(), rewrite=_hostile_regions) as proxy:
        endpoints = {"sts": proxy.url, "ec2": proxy.url}
        observation, api = scan("aws://", context(endpoints=endpoints))
    (account,) = by_type(observation, "aws.account").values()
    assert account.facts["regions"] == ["eu-west-3"]
    (problem,) = [p for p in observation.problems if "not a region name" in p.message]
    assert problem.reason is Reason.REFUSED and problem.facts == ("regions",)
    assert {region for _, region in api._clients} == {"eu-west-3"}


def test_a_default_region_that_is_not_one_label_stops_the_scan_before_any_call(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3.attacker.example#")
    observation = FAMILY.collect(parse(f"aws://?endpoint={lab.url}"), context())
    (problem,) = observation.problems
    assert "is not a region name" in problem.message and not observation.resources
