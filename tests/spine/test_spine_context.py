"""A rule's ``context`` (facts reported beside the verdict) and ``declared`` (a pass the
inventory vouches for): validated when the policy loads, visible in message and evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import PolicyError
from audit.evaluate import BoundRule, evaluate_rule
from audit.models import Problem, Reason, Resource, Status
from audit.policy import Policy, load_policy

FACTS = {"demo.group": {"open_ports", "is_attached", "name"}}
POLICY = """\
policy: demo
title: T
params:
  elsewhere: {default: null, description: where it is met instead}
rules:
  - id: DEMO-NET-001
    title: No open port
    resource: demo.group
    expect: {key: length(open_ports), op: eq, value: 0}
    severity: high
    controls: {}
    remediation: Close it.
    context: [is_attached]
    declared:
      param: elsewhere
      message: met elsewhere, as declared by the inventory
"""


def _load(tmp_path: Path, text: str = POLICY) -> Policy:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return load_policy(path, FACTS)


def _group(**facts: object) -> Resource:
    return Resource(type="demo.group", key="g-1", target="demo://x", system="s", facts=facts)


def test_context_facts_join_the_evidence_and_the_message(tmp_path: Path) -> None:
    policy = _load(tmp_path)
    bound = BoundRule(policy.rules[0], policy.params)
    failed = evaluate_rule(bound, _group(open_ports=[22], is_attached=False))
    assert failed.status is Status.FAIL
    assert failed.message == "expected length(open_ports) eq 0 (is_attached: false)"
    assert failed.evidence == {"is_attached": False, "length(open_ports)": 1}
    passed = evaluate_rule(bound, _group(open_ports=[], is_attached=True))
    assert (passed.status, passed.message) == (Status.PASS, "ok (is_attached: true)")


def test_an_unknown_context_fact_is_left_out_and_never_makes_an_error(tmp_path: Path) -> None:
    policy = _load(tmp_path)
    problem = Problem(Reason.ACCESS_DENIED, "denied")
    group = Resource(
        type="demo.group",
        key="g-1",
        target="demo://x",
        system="s",
        facts={"open_ports": [22]},
        unknown={"is_attached": problem},
    )
    finding = evaluate_rule(BoundRule(policy.rules[0], policy.params), group)
    assert (finding.status, finding.evidence) == (Status.FAIL, {"length(open_ports)": 1})


def test_a_declaration_passes_what_fails_and_says_who_vouched(tmp_path: Path) -> None:
    policy = _load(tmp_path)
    rule = policy.rules[0]
    params = {**policy.params, "elsewhere": "SOC, ticket 12"}
    finding = evaluate_rule(BoundRule(rule, params), _group(open_ports=[22], is_attached=True))
    assert finding.status is Status.PASS
    assert finding.message.startswith("met elsewhere, as declared by the inventory: SOC, ticket 12")
    assert finding.evidence["params.elsewhere"] == "SOC, ticket 12"
    assert finding.evidence["length(open_ports)"] == 1  # what was observed stays visible
    # without the declaration the same facts fail
    bare = evaluate_rule(BoundRule(rule, policy.params), _group(open_ports=[22]))
    assert bare.status is Status.FAIL


def test_a_declaration_also_covers_facts_that_could_not_be_read(tmp_path: Path) -> None:
    policy = _load(tmp_path)
    group = Resource(
        type="demo.group",
        key="g-1",
        target="demo://x",
        system="s",
        facts={},
        unknown={"open_ports": Problem(Reason.ACCESS_DENIED, "denied")},
    )
    params = {**policy.params, "elsewhere": "SOC"}
    finding = evaluate_rule(BoundRule(policy.rules[0], params), group)
    assert (finding.status, finding.evidence) == (Status.PASS, {"params.elsewhere": "SOC"})


MESSAGE = "message: met elsewhere, as declared by the inventory"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[is_attached]", "[is_atached]", "context[0]: demo.group has no fact 'is_atached'"),
        ("[is_attached]", "['length(']", "bad key expression"),
        ("param: elsewhere", "param: nowhere", "parameter 'nowhere' is not declared"),
        (MESSAGE, "message: ''", "rules[0].declared.message"),
    ],
)
def test_context_and_declaration_are_checked_when_the_policy_loads(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("(", r"\(")):
        _load(tmp_path, POLICY.replace(old, new))
