"""The outscale family against a fake OAPI served from Outscale's own OpenAPI examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audit.errors import ScopeError, TargetError
from audit.plugins import Scope
from checks.outscale import FAMILY
from checks.outscale.collect import CALLS
from checks.outscale.lab import LAB_SECRET_KEY, FakeOapi

from .conftest import by_type, parse, scan

POLICY = Path(__file__).parents[2] / "policies" / "outscale-baseline.yaml"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("outscale://lab", "outscale://lab"),
        ("outscale://", "outscale://default"),
        (
            "outscale://lab?regions=cloudgouv-eu-west-1,eu-west-2",
            "outscale://lab?regions=cloudgouv-eu-west-1,eu-west-2",
        ),
    ],
)
def test_targets_are_made_canonical(raw: str, canonical: str) -> None:
    assert parse(raw).uri == canonical


@pytest.mark.parametrize(
    "raw", ["outscale://lab?regions=EU", "outscale://a:b@lab", "outscale://lab/x"]
)
def test_bad_targets_are_refused(raw: str) -> None:
    with pytest.raises(TargetError):
        parse(raw)


def test_the_spec_examples_read_as_a_flawed_account(oapi: FakeOapi) -> None:
    obs = scan()
    assert obs.problems == ()
    (account,) = by_type(obs, "outscale.account").values()
    assert account == {
        "account_id": "123456789012",
        "max_access_key_expiration_seconds": 0,
        "has_key_expiry_limit": False,
        "require_trusted_env": False,
    }
    (rule,) = by_type(obs, "outscale.api_access_rule").values()
    assert rule["is_world_open"] is True and rule["requires_client_certificate"] is False
    (key,) = by_type(obs, "outscale.access_key").values()
    assert key["has_expiry"] is True and key["is_active"] is True
    assert by_type(obs, "outscale.volume")["vol-12345678"]["is_attached"] is True
    assert by_type(obs, "outscale.snapshot")["snap-12345678"]["is_public"] is False
    assert by_type(obs, "outscale.public_ip")["eipalloc-12345678"]["is_attached"] is True
    assert "sg-12345678" in by_type(obs, "outscale.security_group")
    assert sorted(set(oapi.requests)) == sorted(CALLS)


def test_emitted_facts_are_documented_and_documented_facts_emitted(oapi: FakeOapi) -> None:
    documented = {t.name: {f.name for f in t.facts} for t in FAMILY.resource_types}
    emitted: dict[str, set[str]] = {}
    for resource in scan().resources:
        names = set(resource.facts) | set(resource.unknown)
        assert names <= documented[resource.type], names - documented[resource.type]
        emitted.setdefault(resource.type, set()).update(names)
    assert emitted == documented


@pytest.mark.parametrize(
    ("action", "status", "reason"),
    [
        ("ReadApiAccessRules", 403, "access_denied"),
        ("ReadAccessKeys", 429, "throttled"),
        ("ReadVolumes", 500, "unreachable"),
    ],
)
def test_errors_are_data_naming_the_call(
    oapi: FakeOapi, action: str, status: int, reason: str
) -> None:
    oapi.faults[action] = status
    obs = scan()
    (problem,) = [p for p in obs.problems if p.resource_type in CALLS[action]]
    assert problem.reason == reason and action in problem.message
    assert not by_type(obs, CALLS[action][0])
    assert by_type(obs, "outscale.account")  # the rest is read


def test_a_denied_policy_leaves_the_account_facts_unknown(oapi: FakeOapi) -> None:
    oapi.faults["ReadApiAccessPolicy"] = 403
    (account,) = [r for r in scan().resources if r.type == "outscale.account"]
    assert account.unknown["require_trusted_env"].reason == "access_denied"
    assert "require_trusted_env" not in account.facts


def test_an_undeclared_account_is_refused_after_readaccounts_only(oapi: FakeOapi) -> None:
    scope = Scope(networks=("127.0.0.1/32",), blocks={"outscale": {"accounts": ("999999999999",)}})
    obs = scan(scope=scope)
    assert obs.resources == () and obs.problems[0].reason == "refused"
    assert oapi.requests == ["ReadAccounts"]


def test_scope_hook_refuses_a_scope_without_accounts_and_admits_the_endpoint(
    oapi: FakeOapi,
) -> None:
    assert FAMILY.admit is not None and FAMILY.validate_scope is not None
    with pytest.raises(ScopeError, match="lists no Outscale account"):
        FAMILY.admit(parse("outscale://lab"), Scope(networks=("127.0.0.1/32",)), {})
    reaches = FAMILY.admit(parse("outscale://lab"), Scope(), {})
    assert [r.url for r in reaches] == [oapi.endpoint.rsplit("/api", 1)[0]]
    assert oapi.requests == []
    with pytest.raises(ValueError, match="12-digit"):
        FAMILY.validate_scope({"accounts": ["1234"]})


def _scan_cli(tmp: Path, name: str, params: str = "") -> dict[str, object]:
    inventory = tmp / f"{name}.yaml"
    inventory.write_text(
        "scope:\n  networks: [127.0.0.1/32]\n  outscale: {accounts: ['123456789012']}\n"
        "systems:\n  - name: Cloud\n    targets: ['outscale://lab']\n" + params
    )
    out = tmp / f"{name}.json"
    done = subprocess.run(
        [sys.executable, "-m", "audit", "scan", "-i", str(inventory), "-p", "outscale-baseline",
         "-o", str(out), "--db", str(tmp / f"{name}.db")],
        capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    assert LAB_SECRET_KEY not in done.stdout + done.stderr
    return dict(json.loads(out.read_text()))


def test_every_rule_passes_and_fails_and_no_secret_is_kept(oapi: FakeOapi, tmp_path: Path) -> None:
    # Given the spec's flawed account, plus a clean twin of each flawed thing
    oapi.answers["ReadApiAccessRules"]["ApiAccessRules"].append(
        {"ApiAccessRuleId": "aar-ca", "IpRanges": ["0.0.0.0/0"], "CaIds": ["ca-1"], "Cns": []}
    )
    oapi.answers["ReadAccessKeys"]["AccessKeys"].append(
        {"AccessKeyId": "NOEXPIRY000000000000", "State": "ACTIVE"}
    )
    flawed = _scan_cli(tmp_path, "flawed")
    oapi.answers["ReadApiAccessPolicy"]["ApiAccessPolicy"] = {
        "RequireTrustedEnv": True,
        "MaxAccessKeyExpirationSeconds": 7776000,
    }
    clean = _scan_cli(tmp_path, "clean")
    statuses: dict[str, set[str]] = {}
    for report in (flawed, clean):
        for finding in report["findings"]:  # type: ignore[attr-defined]
            statuses.setdefault(finding["rule_id"], set()).add(finding["status"])
    for rule in yaml.safe_load(POLICY.read_text())["rules"]:
        assert {"pass", "fail"} <= statuses[rule["id"]], (rule["id"], statuses.get(rule["id"]))
    for path in tmp_path.iterdir():
        if path.name != "osc-config.json":  # the profile itself holds it, by design
            assert LAB_SECRET_KEY not in path.read_bytes().decode("latin-1")


def test_importing_the_family_imports_no_sdk() -> None:
    code = "import sys, checks.outscale; print('osc_sdk_python' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
