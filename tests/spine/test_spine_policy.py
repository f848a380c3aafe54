"""Policy files: valid ones compile, wrong ones are refused whole with file, line, path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.errors import PolicyError, PolicyErrors
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
    french = rule.translations["fr"]
    assert (french.title, french.remediation) == ("Seuls les ports autorisés", "Fermez-le.")
    from audit.evaluate import BoundRule, evaluate_rule
    from audit.models import Resource

    finding = evaluate_rule(BoundRule(rule, {}), Resource("demo.item", "k", "t", "s", {"port": 22}))
    assert finding.title_in("fr") == "Seuls les ports autorisés"
    assert finding.title_in("en") == "Only allowed ports"
    assert finding.remediation_in("fr") == "Fermez-le."


def test_a_third_language_is_data_in_the_rule_and_the_store(tmp_path: Path) -> None:
    # Given a rule with German texts in its translations block, beside French shorthands
    path = write(
        tmp_path,
        "policy: demo\ntitle: T\nrules:\n"
        + GOOD_RULE.replace(
            "    severity: high\n",
            "    title_fr: Seuls les ports autorisés\n"
            "    translations:\n      de:\n        title: Nur erlaubte Ports\n"
            "        remediation: Schließen.\n    severity: high\n",
        ),
    )
    rule = load_policy(path, KNOWN).rules[0]
    from audit.evaluate import BoundRule, evaluate_rule
    from audit.models import Resource
    from audit.store import Store

    finding = evaluate_rule(BoundRule(rule, {}), Resource("demo.item", "k", "t", "s", {"port": 22}))
    # When the finding is stored and read back
    store = Store(tmp_path / "r.db")
    scan = store.begin_scan(
        policies=["demo"], inventory=None, scope_declared=True, targets=["t"], systems=(),
        tool_version="x",
    )  # fmt: skip
    store.record(scan, [], [finding])
    store.finish_scan(scan, "complete")
    (back,) = store.findings(scan)
    # Then each language reads its own texts, and English is the fallback
    assert back.title_in("de") == "Nur erlaubte Ports"
    assert back.remediation_in("de") == "Schließen."
    assert back.title_in("fr") == "Seuls les ports autorisés"
    assert back.remediation_in("fr") == "Close it."
    assert back.title_in("it") == "Only allowed ports"


def test_a_translation_key_must_be_a_language_code(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "policy: demo\ntitle: T\nrules:\n"
        + GOOD_RULE.replace(
            "    severity: high\n",
            "    translations:\n      German:\n        title: Nur\n    severity: high\n",
        ),
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(path, KNOWN)
    assert ":8: rules[0].translations: 'German' is not a language code" in str(caught.value)


def test_a_rule_without_remediation_loads_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "policy: demo\ntitle: T\nrules:\n" + GOOD_RULE.replace("    remediation: Close it.\n", ""),
    )
    policy = load_policy(path, KNOWN)
    assert policy.rules[0].remediation == ""
    (warning,) = policy.warnings
    assert warning.startswith(f"{path}:4: rules[0] (DEMO-PORT-001): no remediation given")


TLS_FACTS = {
    "tls.endpoint": {
        "protocols",
        "port",
        "hsts",
        "certificate",
        "certificate.days_left",
        "certificate.san",
        "cipher_suites",
    }
}


@pytest.mark.parametrize(
    ("key", "unknown", "hint"),
    [
        ("protcols", "protcols", "did you mean 'protocols'?"),
        ("certificate.days_lef", "certificate.days_lef", "did you mean 'certificate.days_left'?"),
        ("length(certificate.sna)", "certificate.sna", "did you mean 'certificate.san'?"),
        ("not_null(portt, port)", "portt", "did you mean 'port'?"),
        ("zzz", "zzz", ""),
    ],
)
def test_a_key_that_reads_an_undocumented_fact_is_refused(
    tmp_path: Path, key: str, unknown: str, hint: str
) -> None:
    # Given a rule whose key has a typo in a fact name
    text = GOOD_RULE.replace("demo.item", "tls.endpoint").replace(
        "{key: port, op: in, value: [80, 443]}", f"{{key: '{key}', op: exists}}"
    )
    path = write(tmp_path, "policy: demo\ntitle: T\nrules:\n" + text)
    # When the policy loads against the documented facts, then it names the fact and a hint
    with pytest.raises(PolicyError) as caught:
        load_policy(path, TLS_FACTS)
    message = str(caught.value)
    assert caught.value.line == 7
    assert f"rules[0].expect.key: tls.endpoint has no fact {unknown!r}" in message
    assert hint in message


@pytest.mark.parametrize(
    "key",
    [
        "protocols",
        "certificate.days_left",
        "hsts.max_age",  # hsts's fields are described in prose, not one by one
        'cipher_suites."TLSv1.2"',
        "length(certificate.san)",
        "@",
    ],
)
def test_documented_keys_load(tmp_path: Path, key: str) -> None:
    text = GOOD_RULE.replace("demo.item", "tls.endpoint").replace(
        "{key: port, op: in, value: [80, 443]}", f"{{key: '{key}', op: exists}}"
    )
    load_policy(write(tmp_path, "policy: demo\ntitle: T\nrules:\n" + text), TLS_FACTS)


def test_a_remediation_names_documented_facts_and_keeps_other_braces(tmp_path: Path) -> None:
    # Given a command line with fact placeholders beside a JSON argument in braces
    text = GOOD_RULE.replace("demo.item", "tls.endpoint").replace(
        "remediation: Close it.",
        "remediation: 'CLI: fix --days {certificate.days_left} --port {port}"
        """ --rule [{"C": 1}]'\n"""
        "    remediation_fr: 'CLI : fix --port {port}'",
    )
    rule = load_policy(write(tmp_path, "policy: demo\ntitle: T\nrules:\n" + text), TLS_FACTS)
    from audit.evaluate.template import fill, unfilled

    # Then a finding's facts fill it, and a rule's sheet shows what each stands for
    facts = {"certificate": {"days_left": 3}, "port": 443}
    said = fill(rule.rules[0].remediation, facts)
    assert said == 'CLI: fix --days 3 --port 443 --rule [{"C": 1}]'
    generic = unfilled(rule.rules[0].remediation)
    assert generic.startswith("CLI: fix --days <certificate.days_left> --port <port>")
    # and a placeholder naming no fact of the type is refused, in either language
    broken = text.replace("--port {port}'", "--port {prot}'")
    with pytest.raises(PolicyError, match=r"remediation_fr: tls\.endpoint has no fact 'prot'"):
        load_policy(write(tmp_path, "policy: demo\ntitle: T\nrules:\n" + broken), TLS_FACTS)


def test_keys_under_each_are_relative_to_the_elements(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("demo.item", "tls.endpoint").replace(
        "{key: port, op: in, value: [80, 443]}",
        "{each: {key: certificate.san, expect: {key: anything, op: exists}}}",
    )
    load_policy(write(tmp_path, "policy: demo\ntitle: T\nrules:\n" + text), TLS_FACTS)
    broken = text.replace("key: certificate.san", "key: certificate.sans")
    with pytest.raises(
        PolicyError, match=r"each\.key: tls\.endpoint has no fact 'certificate\.sans'"
    ):
        load_policy(write(tmp_path, "policy: demo\ntitle: T\nrules:\n" + broken), TLS_FACTS)


def test_every_fault_in_a_file_is_reported_with_its_line(tmp_path: Path) -> None:
    # Given a file with three mistakes in three rules
    rules = [
        GOOD_RULE.replace("DEMO-PORT-001", "DEMO-PORT-00").replace("demo.item", "tls.endpoint"),
        GOOD_RULE.replace("DEMO-PORT-001", "DEMO-PORT-002")
        .replace("demo.item", "tls.endpoint")
        .replace("key: port", "key: protcols"),
        GOOD_RULE.replace("DEMO-PORT-001", "DEMO-PORT-003")
        .replace("demo.item", "tls.endpoint")
        .replace("severity: high", "severity: urgent"),
    ]
    path = write(tmp_path, "policy: demo\ntitle: T\nrules:\n" + "".join(rules))
    # Then the id and the severity are reported together (pydantic), each with its line
    with pytest.raises(PolicyErrors) as caught:
        load_policy(path, TLS_FACTS)
    lines = caught.value.lines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:4: rules[0].id")
    assert lines[1].startswith(f"{path}:20: rules[2].severity")
    # And once those are fixed, the unknown fact is the one left
    fixed = path.read_text().replace("DEMO-PORT-00\n", "DEMO-PORT-001\n").replace("urgent", "high")
    path.write_text(fixed)
    with pytest.raises(PolicyError, match="protcols"):
        load_policy(path, TLS_FACTS)


def test_policy_validate_reports_every_fault_of_every_file_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audit.cli import app as cli

    # Given one file with a typo'd fact, one with a bad severity, one valid without remediation
    typo = GOOD_RULE.replace("demo.item", "tls.endpoint").replace(
        "{key: port, op: in, value: [80, 443]}", "{key: protcols, op: exists}"
    )
    (tmp_path / "a.yaml").write_text("policy: a\ntitle: T\nrules:\n" + typo)
    bad = GOOD_RULE.replace("demo.item", "tls.endpoint").replace("high", "urgent")
    (tmp_path / "b.yaml").write_text("policy: b\ntitle: T\nrules:\n" + bad.replace("001", "002"))
    fine = GOOD_RULE.replace("demo.item", "tls.endpoint").replace(
        "    remediation: Close it.\n", ""
    )
    (tmp_path / "c.yaml").write_text("policy: c\ntitle: T\nrules:\n" + fine.replace("001", "003"))
    # When they are validated together
    with pytest.raises(SystemExit) as exited:
        cli.main(["policy", "validate", *(str(tmp_path / f"{n}.yaml") for n in "abc")])
    # Then both faults are named with file and line, the valid file is ok with a warning
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert (
        f"{tmp_path / 'a.yaml'}:7: rules[0].expect.key: tls.endpoint has no fact 'protcols'" in err
    )
    assert "did you mean 'protocols'?" in err
    assert f"{tmp_path / 'b.yaml'}:8: rules[0].severity" in err
    assert f"warning: {tmp_path / 'c.yaml'}:4: rules[0] (DEMO-PORT-003): no remediation" in err
    assert f"ok: {tmp_path / 'c.yaml'}" in out


def test_policy_validate_warns_when_two_packs_differ_on_one_fact(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from audit.cli import app as cli
    from audit.registry import builtin_policies

    # Given Mozilla's two profiles validated together (the demo once applied both)
    packs = builtin_policies()
    with pytest.raises(SystemExit) as exited:
        cli.main(
            ["policy", "validate", str(packs["mozilla-modern"]), str(packs["mozilla-intermediate"])]
        )
    # Then both are valid, and each fact they judge differently is named once
    assert exited.value.code == 0
    err = capsys.readouterr().err
    assert "TLS-MOZMOD-001 and mozilla-intermediate TLS-MOZINT-001 both judge" in err
    assert "certificate.lifetime_days but differ (le 90 against le 366)" in err
    assert err.count("warning:") == 3


def test_a_scan_with_contradicting_packs_warns_and_still_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audit.cli import app as cli

    # Given a scan that applies both Mozilla profiles (to a loopback port nothing serves)
    args = ["scan", "tls://127.0.0.1:1", "-p", "mozilla-modern", "-p", "mozilla-intermediate"]
    with pytest.raises(SystemExit) as exited:
        cli.main([*args, "--db", str(tmp_path / "r.db"), "--timeout", "2", "-q"])
    # Then each contradiction is one warning line on stderr, as policy validate says it
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("rempart: warning:")]
    assert len(warnings) == 3
    assert any("TLS-MOZMOD-001 and mozilla-intermediate TLS-MOZINT-001" in w for w in warnings)
    # and it is not an error: the scan ran and was stored
    assert exited.value.code != 2
    assert (tmp_path / "r.db").stat().st_size > 0


def test_one_pack_alone_contradicts_nothing() -> None:
    from audit.planning import resolve_policy
    from audit.policy import contradictions
    from audit.registry import load_families

    catalogue = load_families().fact_catalogue()
    for name in ("mozilla-intermediate", "anssi-tls", "cis-aws-foundations"):
        assert contradictions([resolve_policy(name, catalogue)]) == []
