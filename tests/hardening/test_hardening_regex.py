"""A hostile pattern or a hostile value cannot hold a scan: RE2, checked at load, capped.

The attack: a policy rule ``matches: '^([A-Za-z=, ]+)+!$'`` read a certificate issuer a
server chose (letters and spaces, no ``!``). Python's backtracking engine explores every
way to split the issuer between the two quantifiers: with a 30-letter CA name, minutes
of CPU while the scan waits, whatever ``--timeout`` says.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from audit.errors import InventoryError, PolicyError
from audit.evaluate import BoundRule, Leaf, Undecidable, evaluate, evaluate_rule
from audit.models import Reason, Resource, Severity, Status
from audit.policy import Rule, load_policy, with_params
from audit.regex import MAX_SUBJECT
from checks.tls import lab
from tests.hardening.conftest import rempart

EVIL = "^([A-Za-z=, ]+)+!$"

POLICY = f"""\
policy: issuer-pattern
title: Issuer pattern
params:
  issuer_pattern: {{default: 'Intermediate'}}
rules:
  - id: HARD-REGEX-001
    title: The issuer ends with an exclamation mark
    resource: tls.endpoint
    expect: {{key: certificate.issuer, op: matches, value: '{EVIL}'}}
    severity: low
    controls: {{iso27001: A.8.24}}
    remediation: None.
  - id: HARD-REGEX-002
    title: The issuer matches the parameter
    resource: tls.endpoint
    expect: {{key: certificate.issuer, op: matches, param: issuer_pattern}}
    severity: low
    controls: {{iso27001: A.8.24}}
    remediation: None.
"""


@pytest.mark.timeout(60)
def test_catastrophic_pattern_on_a_hostile_issuer_does_not_hold_the_scan(tmp_path: Path) -> None:
    # Given a server whose CA name is 30 letters: exponential work for a backtracking engine
    pki = lab.Pki(tmp_path / "pki", name="A" * 30)
    issued = pki.issue(["localhost"])
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    with lab.PythonTlsServer(lab.server_context(issued)) as server:
        # When a policy matches the issuer against the pattern
        run = rempart(
            "scan",
            f"tls://127.0.0.1:{server.port}",
            "-p",
            str(policy),
            "--ca-file",
            pki.ca_file,
            "--timeout",
            "5",
            "--db",
            str(tmp_path / "r.db"),
            "-o",
            str(tmp_path / "out.json"),
            "-q",
            timeout=50,
        )
    # Then the scan ends at once, with a verdict on both rules
    assert run.code == 0, run.err
    findings = {
        f["rule_id"]: f for f in json.loads((tmp_path / "out.json").read_text())["findings"]
    }
    assert findings["HARD-REGEX-001"]["status"] == "fail"
    assert findings["HARD-REGEX-002"]["status"] == "pass"
    assert "AAAAAAAAAA" in json.dumps(findings["HARD-REGEX-001"]["evidence"])


@pytest.mark.parametrize(
    ("pattern", "why"),
    [(r"(a)\1", "backreference"), ("(?=a)b", "lookahead"), ("(?<!a)b", "lookbehind")],
)
def test_patterns_that_need_backtracking_are_refused_when_the_policy_loads(
    tmp_path: Path, pattern: str, why: str
) -> None:
    # Given a rule whose pattern needs a backtracking engine, then it is refused at its line
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace(EVIL, pattern))
    with pytest.raises(PolicyError) as caught:
        load_policy(path, {"tls.endpoint"})
    assert caught.value.line == 9, why
    assert "bad regular expression" in str(caught.value)
    assert "RE2" in str(caught.value)


def test_a_bad_pattern_default_is_refused_when_the_policy_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace("{default: 'Intermediate'}", r"{default: '(x)\1'}"))
    with pytest.raises(PolicyError, match="parameter default is a bad regular expression"):
        load_policy(path, {"tls.endpoint"})


def test_an_inventory_pattern_parameter_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    policy = load_policy(path, {"tls.endpoint"})
    assert with_params(policy, {"issuer_pattern": "^CN="}, "inv.yaml").params
    with pytest.raises(InventoryError, match=r"params.issuer-pattern.issuer_pattern: bad regular"):
        with_params(policy, {"issuer_pattern": "(?=x)"}, "inv.yaml")
    with pytest.raises(InventoryError, match="must be a string"):
        with_params(policy, {"issuer_pattern": ["x"]}, "inv.yaml")


def test_a_value_too_long_to_match_makes_the_rule_error_not_fail() -> None:
    # Given a fact longer than the cap (a hostile banner, say)
    rule = Rule(
        id="HARD-REGEX-003",
        policy="p",
        title="t",
        resource="net.service",
        expect=Leaf("product", "matches", "^OpenSSH"),
        severity=Severity.LOW,
        remediation="r",
    )
    resource = Resource(
        type="net.service",
        key="tcp://x:22",
        target="ports://x",
        system="s",
        facts={"product": "x" * (MAX_SUBJECT + 1)},
    )
    # When the rule is evaluated, then it is an error with its reason, never a verdict
    started = time.monotonic()
    finding = evaluate_rule(BoundRule(rule, {}), resource)
    assert time.monotonic() - started < 5
    assert finding.status is Status.ERROR
    assert finding.reason is Reason.UNDECIDABLE
    assert "above the" in finding.message
    with pytest.raises(Undecidable):
        evaluate(Leaf("product", "matches", "^OpenSSH"), dict(resource.facts), {})
