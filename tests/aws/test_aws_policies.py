"""The shipped AWS packs: valid, tied to documented facts, mapped to known controls."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from audit.frameworks import unknown_controls
from checks.aws import FAMILY

POLICIES = Path(__file__).parents[2] / "policies"
PACKS = ("cis-aws-foundations", "aws-baseline")
FACTS = {t.name: {f.name for f in t.facts} for t in FAMILY.resource_types}


def _rules(pack: str) -> list[dict[str, object]]:
    return list(yaml.safe_load((POLICIES / f"{pack}.yaml").read_text())["rules"])


def _keys(condition: object) -> list[str]:
    """Every ``key`` a condition reads (top level only for ``each`` elements)."""
    if isinstance(condition, dict) and "each" in condition:
        return [str(condition["each"]["key"])]
    if isinstance(condition, dict):
        found = [str(condition["key"])] if "key" in condition and "op" in condition else []
        for value in condition.values():
            if isinstance(value, dict | list):
                found += _keys(value)
        return found
    if isinstance(condition, list):
        return [k for item in condition for k in _keys(item)]
    return []


@pytest.mark.parametrize("pack", PACKS)
def test_rules_read_documented_facts_and_map_known_controls(pack: str) -> None:
    for rule in _rules(pack):
        assert rule["resource"] in FACTS, rule["id"]
        assert str(rule["id"]).startswith("AWS-")
        assert "Console" in str(rule["remediation"]) and "CLI" in str(rule["remediation"])
        controls = {k: v if isinstance(v, list) else [v] for k, v in dict(rule["controls"]).items()}  # type: ignore[call-overload]
        assert not unknown_controls(controls), (rule["id"], unknown_controls(controls))
        assert {"anssi-hygiene", "nis2", "iso27001"} <= set(controls), rule["id"]
        for key in _keys(rule["expect"]) + _keys(rule.get("where")):
            names = set(re.findall(r"[a-z_][a-z0-9_]*", key)) - {"length"}
            top = {n for n in names if n in FACTS[str(rule["resource"])]}
            assert top, (rule["id"], key)


def test_cis_rules_name_their_recommendation_and_level() -> None:
    for rule in _rules("cis-aws-foundations"):
        cis = dict(rule["controls"])["cis-aws"]  # type: ignore[call-overload]
        assert re.search(
            rf"recommendation {re.escape(str(cis))}, Level [12]\.", str(rule["description"])
        )


def test_importing_the_family_imports_no_boto3() -> None:
    import subprocess
    import sys

    code = "import sys, checks.aws; print('boto3' in sys.modules or 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
