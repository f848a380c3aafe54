"""Walk the registry: every shipped family and rule meets the contract.

Docs that cannot drift: each family documents its resource types and facts and has
tests of its own; each shipped rule validates, has a unique id, a severity, a
remediation and at least one control mapping to a known framework.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.planning import load_all_builtin
from audit.policy import check_unique_ids
from audit.registry import builtin_policies, load_families, load_renderers

TESTS = Path(__file__).parent
FAMILIES = load_families()


def test_the_three_builtin_families_load() -> None:
    assert {"ports", "tls", "aws"} <= set(FAMILIES.by_name)


@pytest.mark.parametrize("name", sorted(FAMILIES.by_name))
def test_family_is_documented_and_tested(name: str) -> None:
    family = FAMILIES.by_name[name]
    module = importlib.import_module(family.collect.__module__.split(".")[0] + "." + name)
    assert module.__doc__ and len(module.__doc__) > 80
    assert family.description and family.schemes and family.resource_types
    for resource_type in family.resource_types:
        assert resource_type.name.startswith(f"{resource_type.name.split('.')[0]}.")
        assert resource_type.description
        assert resource_type.facts, f"{resource_type.name} documents no facts"
        for fact in resource_type.facts:
            assert fact.description, f"{resource_type.name}.{fact.name} is undocumented"
    tests = list((TESTS / name).glob("test_*.py"))
    assert tests, f"family {name!r} has no tests under tests/{name}/"


def test_every_shipped_policy_validates_with_unique_ids() -> None:
    packs = load_all_builtin(FAMILIES.fact_catalogue())
    assert len(packs) == len(builtin_policies()) >= 4
    check_unique_ids(packs)


@pytest.mark.parametrize("pack", sorted(builtin_policies()))
def test_every_rule_has_severity_remediation_and_controls(pack: str) -> None:
    (policy,) = [p for p in load_all_builtin(FAMILIES.fact_catalogue()) if p.name == pack]
    for rule in policy.rules:
        assert rule.remediation.strip(), rule.id
        assert rule.controls and all(rule.controls.values()), f"{rule.id} maps no control"


@pytest.mark.parametrize("pack", sorted(builtin_policies()))
def test_every_built_in_rule_says_its_failure_in_english_and_french(pack: str) -> None:
    # A failure reads as a sentence naming the resource, never as the condition's syntax
    # (tests/test_demo.py renders each one against the demo's real observations)
    from audit.evaluate.rules import failure_message

    (policy,) = [p for p in load_all_builtin(FAMILIES.fact_catalogue()) if p.name == pack]
    for rule in policy.rules:
        english = failure_message(rule, {}, lang="en")
        french = failure_message(rule, {}, lang="fr")
        assert not english.startswith("expected "), f"{rule.id} has no message"
        assert french != english, f"{rule.id} has no French message"


@pytest.mark.parametrize("pack", sorted(builtin_policies()))
def test_every_built_in_rule_names_its_source(pack: str) -> None:
    # Every rule cites a document, its version and a section (DESIGN: Sources)
    (policy,) = [p for p in load_all_builtin(FAMILIES.fact_catalogue()) if p.name == pack]
    for rule in policy.rules:
        assert rule.references, f"{rule.id} names no source"
        cited = [r for r in rule.references if r.document and r.version and r.section]
        assert cited, f"{rule.id}: a reference needs document, version and section"


def test_renderers_cover_every_format() -> None:
    renderers = load_renderers()
    assert {"json", "html", "pdf", "csv", "sarif", "junit", "md", "ocsf"} <= set(renderers)


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys, time; t=time.perf_counter(); from audit.cli import cli; "
        "heavy=[m for m in ('boto3','nmap','cryptography','jinja2','pydantic','cryptoparser',"
        "'sqlite_utils','rich','weasyprint') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "audit", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - started < 1.5  # generous on a loaded CI box; bench/ measures
