"""Twin rules (``same_as``): validated beside the other packs, accepted together.

A control checked by two packs is one risk: accepting it under one rule id must not
leave its twin open, and a ``same_as`` naming a rule nobody defines is a fault at load.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from audit.cli import app as cli
from audit.errors import PolicyError
from audit.policy import builtin_twins, check_unique_ids, load_policy
from audit.registry import Families

TWINS = """\
policy: twins
title: Twins
rules:
  - id: AWS-EC2-003
    title: No admin port from 0.0.0.0/0
    resource: demo.item
    expect: {key: port, op: ne, value: 22}
    severity: critical
    remediation: Close it.
  - id: AWS-EC2-101
    title: No admin port open to the Internet
    resource: demo.item
    expect: {key: port, op: ne, value: 22}
    severity: critical
    same_as: [AWS-EC2-003]
    remediation: Close it.
"""
KNOWN = {"demo.item": {"port", "tags"}}


@pytest.fixture(autouse=True)
def only_the_facts_family(monkeypatch: pytest.MonkeyPatch, families: Families) -> None:
    monkeypatch.setattr(cli, "_families", lambda: families)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_the_built_in_twins_are_symmetric_and_on_one_resource_type() -> None:
    twins = builtin_twins()
    assert twins["AWS-EC2-003"] == {"AWS-EC2-101"}
    assert twins["TLS-PROTO-002"] == {"TLS-MOZINT-001"}
    assert twins["AWS-IAM-003"] == {"AWS-IAM-102"}
    assert all(rule in twins[twin] for rule, others in twins.items() for twin in others)


def test_same_as_must_name_a_known_rule_of_the_same_type(tmp_path: Path) -> None:
    path = tmp_path / "twins.yaml"
    path.write_text(TWINS.replace("[AWS-EC2-003]", "[AWS-EC2-003, NOPE-X-001, AWS-IAM-003]"))
    with pytest.raises(PolicyError) as caught:
        check_unique_ids([load_policy(path, KNOWN)])
    text = str(caught.value)
    assert "unknown rule 'NOPE-X-001'" in text
    assert "'AWS-IAM-003' selects another resource type" in text
    path.write_text(TWINS.replace("[AWS-EC2-003]", "[AWS-EC2-101]"))
    with pytest.raises(PolicyError, match="same as itself"):
        load_policy(path, KNOWN)


def test_accepting_a_rule_accepts_its_twin_on_the_same_resource(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack, db, inv = tmp_path / "twins.yaml", str(tmp_path / "r.db"), tmp_path / "inv.yaml"
    pack.write_text(TWINS)
    spec = {"web": {"resources": [{"key": "item://web", "facts": {"port": 22, "tags": []}}]}}
    systems = "systems:\n  - name: Web\n    targets: [facts://web]\n"
    inv.write_text(f"{systems}facts: {json.dumps(spec)}\n")
    scan = ("scan", "-i", str(inv), "-p", str(pack), "--db", db, "--fail-on", "critical")
    assert run(capsys, *scan)[0] == 1
    until = (date.today() + timedelta(days=30)).isoformat()
    code, out, err = run(
        capsys, "accept", "AWS-EC2-003", "item://web", "--owner", "M. Martin",
        "--reason", "bastion", "--until", until, "--db", db,
    )  # fmt: skip
    assert code == 0, err
    assert "AWS-EC2-101 on item://web as a twin of AWS-EC2-003" in out
    _, out, _ = run(capsys, "findings", "--json", "--db", db)
    states = {row["rule_id"]: row["lifecycle"] for row in map(json.loads, out.splitlines())}
    assert states == {"AWS-EC2-003": "accepted", "AWS-EC2-101": "accepted"}
    assert run(capsys, *scan)[0] == 0  # the gate no longer fails on the twin
    _, out, _ = run(capsys, "acceptances", "--json", "--db", db)
    assert {(a["rule_id"], a["owner"], a["until"]) for a in json.loads(out)} == {
        ("AWS-EC2-003", "M. Martin", until),
        ("AWS-EC2-101", "M. Martin", until),
    }
