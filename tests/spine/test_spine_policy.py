"""Policy files: valid ones compile, wrong ones are refused whole with file, line, path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.errors import PolicyError
from audit.policy import check_unique_ids, load_policy, policy_schema, with_params

KNOWN = {"demo.item"}

GOOD_RULE = """\
  - id: DEMO-PORT-001
    title: Only allowed ports
    resource: demo.item
    expect: {key: port, op: in, value: [80, 443]}
    severity: high
    remediation: Close it.
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def test_valid_policy_compiles(policy_file: Path) -> None:
    policy = load_policy(policy_file, KNOWN)
    assert policy.name == "demo"
    assert [r.id for r in policy.rules] == ["DEMO-PORT-001", "DEMO-TAG-001"]
    assert policy.params == {"allowed": [80, 443]}
    assert policy.rules[1].reads == {"tags", "port"}


# (policy text, expected line, expected fragment of the message)
MALFORMED = {
    "yaml-syntax": ("policy: demo\ntitle: [unclosed\n", 3, "invalid YAML"),
    "not-a-mapping": ("- a\n- b\n", 1, "must be a mapping"),
    "unknown-op": (
        "policy: demo\ntitle: T\nrules:\n" + GOOD_RULE.replace("op: in", "op: teleport"),
        7,
        "rules[0].expect.op: unknown operator 'teleport'",
    ),
    "bad-key-expression": (
        "policy: demo\ntitle: T\nrules:\n" + GOOD_RULE.replace("key: port", "key: 'port[['"),
        7,
        "bad key expression",
    ),
    "duplicate-rule-id": (
        "policy: demo\ntitle: T\nrules:\n" + GOOD_RULE + GOOD_RULE,
        10,
        "duplicate rule id 'DEMO-PORT-001'",
    ),
    "unknown-resource-type": (
        "policy: demo\ntitle: T\nrules:\n"
        + GOOD_RULE.replace("resource: demo.item", "resource: demo.nothing"),
        6,
        "unknown resource type",
    ),
    "unknown-field": (
        "policy: demo\ntitle: T\nrules:\n" + GOOD_RULE + "    colour: red\n",
        10,
        "rules[0].colour: unknown field 'colour'",
    ),
    "missing-remediation": (
        "policy: demo\ntitle: T\nrules:\n" + GOOD_RULE.replace("    remediation: Close it.\n", ""),
        4,
        "rules[0].remediation: required field",
    ),
    "bad-severity": (
        "policy: demo\ntitle: T\nrules:\n"
        + GOOD_RULE.replace("severity: high", "severity: apocalyptic"),
        8,
        "rules[0].severity",
    ),
    "bad-rule-id": (
        "policy: demo\ntitle: T\nrules:\n" + GOOD_RULE.replace("DEMO-PORT-001", "port rule"),
        4,
        "must look like AREA-TOPIC-NNN",
    ),
    "undeclared-param": (
        "policy: demo\ntitle: T\nrules:\n"
        + GOOD_RULE.replace("value: [80, 443]", "param: allowed"),
        7,
        "parameter 'allowed' is not declared",
    ),
    "op-needs-value": (
        "policy: demo\ntitle: T\nrules:\n" + GOOD_RULE.replace(", value: [80, 443]", ""),
        7,
        "needs a 'value'",
    ),
    "in-needs-list": (
        "policy: demo\ntitle: T\nrules:\n" + GOOD_RULE.replace("[80, 443]", "80"),
        7,
        "needs a list value",
    ),
    "bad-regex": (
        "policy: demo\ntitle: T\nrules:\n"
        + GOOD_RULE.replace(
            "{key: port, op: in, value: [80, 443]}", "{key: name, op: matches, value: '(['}"
        ),
        7,
        "bad regular expression",
    ),
    "no-rules": ("policy: demo\ntitle: T\nrules: []\n", 3, "rules"),
    "python-object-tag": (
        "policy: !!python/object/apply:os.system ['true']\ntitle: T\n",
        1,
        "invalid",
    ),
    "duplicate-key": ("policy: demo\npolicy: other\ntitle: T\n", 2, "duplicate key"),
    "nested-unknown-combinator-field": (
        "policy: demo\ntitle: T\nrules:\n"
        + GOOD_RULE.replace(
            "{key: port, op: in, value: [80, 443]}", "{all: [{key: port, op: eq, valu: 1}]}"
        ),
        7,
        "rules[0].expect.all[0]",
    ),
    "empty-file": ("", 1, "must be a mapping"),
    "both-value-and-param": (
        "policy: demo\ntitle: T\nparams: {p: {default: [1]}}\nrules:\n"
        + GOOD_RULE.replace("value: [80, 443]", "value: [1], param: p"),
        8,
        "either 'value' or 'param'",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_policy_is_refused_with_file_line_and_path(tmp_path: Path, case: str) -> None:
    text, line, fragment = MALFORMED[case]
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path, KNOWN)
    message = str(caught.value)
    assert message.startswith(f"{path}:")
    assert fragment in message
    if caught.value.line is not None:
        assert caught.value.line == line, message
    assert "\n" not in message


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "nope.yaml", KNOWN)


def test_rule_ids_are_unique_across_packs(tmp_path: Path, policy_file: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(policy_file.read_text().replace("policy: demo", "policy: other"))
    with pytest.raises(PolicyError, match="defined by both"):
        check_unique_ids([load_policy(policy_file, KNOWN), load_policy(other, KNOWN)])


def test_inventory_params_override_defaults_and_unknown_ones_are_refused(policy_file: Path) -> None:
    policy = load_policy(policy_file, KNOWN)
    assert with_params(policy, {"allowed": [22]}, "inv.yaml").params["allowed"] == [22]
    with pytest.raises(Exception, match="unknown parameter"):
        with_params(policy, {"alowed": [22]}, "inv.yaml")


def test_schema_is_generated_from_the_models() -> None:
    schema = policy_schema()
    text = json.dumps(schema)
    assert schema["title"] == "Rempart policy"
    assert "rules" in schema["properties"]
    assert "subset_of" in text


def test_french_titles_travel_from_policy_to_finding(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "policy: demo\ntitle: T\nrules:\n"
        + GOOD_RULE.replace(
            "    severity: high\n",
            "    title_fr: Seuls les ports autorisés\n    remediation_fr: Fermez-le.\n"
            "    severity: high\n",
        ),
    )
    rule = load_policy(path, KNOWN).rules[0]
    assert (rule.title_fr, rule.remediation_fr) == ("Seuls les ports autorisés", "Fermez-le.")
    from audit.engine import BoundRule, evaluate_rule
    from audit.models import Resource

    finding = evaluate_rule(BoundRule(rule, {}), Resource("demo.item", "k", "t", "s", {"port": 22}))
    assert finding.title_in("fr") == "Seuls les ports autorisés"
    assert finding.title_in("en") == "Only allowed ports"
    assert finding.remediation_in("fr") == "Fermez-le."
