"""Docs that cannot drift: every policy example in the docs loads and validates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.policy import load_policy
from audit.registry import load_families

DOCS = Path(__file__).parent.parent / "docs"
BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def policy_examples() -> list[tuple[str, str]]:
    examples = []
    for path in sorted(DOCS.glob("*.md")):
        for index, block in enumerate(BLOCK.findall(path.read_text())):
            if block.startswith("policy:"):
                examples.append((f"{path.name}#{index}", block))
    return examples


def test_every_operator_has_an_example() -> None:
    text = "\n".join(block for _, block in policy_examples())
    for op in (
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "subset_of",
        "disjoint_from",
        "matches",
        "exists",
        "absent",
    ):
        assert re.search(rf"op: {op}\b", text), op
    for combinator in ("all:", "any:", "not:", "each:"):
        assert combinator in text


@pytest.mark.parametrize(("name", "block"), policy_examples())
def test_policy_example_validates(tmp_path: Path, name: str, block: str) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(block)
    policy = load_policy(path, load_families().resource_types())
    assert policy.rules


ROOT = DOCS.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.name)
def test_every_local_link_exists(doc: Path) -> None:
    for target in LINK.findall(doc.read_text()):
        if "://" in target:
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_example_files_parse() -> None:
    import subprocess

    import yaml

    for path in sorted((ROOT / "examples").rglob("*.y*ml")):
        assert list(yaml.safe_load_all(path.read_text())), path
    for path in sorted((ROOT / "examples").rglob("*.sh")):
        subprocess.run(["sh", "-n", str(path)], check=True)


def test_example_inventory_validates() -> None:
    from audit.inventory import load_inventory

    inventory = load_inventory(ROOT / "examples" / "inventory.yaml", load_families())
    assert [s.name for s in inventory.systems] == ["Portail usagers", "Messagerie", "Comptes cloud"]
    assert inventory.scope.is_declared and len(inventory.targets) == 4


@pytest.mark.parametrize(
    "page",
    [
        "checks.md",
        "aws-permissions.md",
        "openstack-permissions.md",
        "outscale-permissions.md",
        "frameworks.md",
    ],
)
def test_generated_pages_are_current(page: str) -> None:
    from audit.docgen import PAGES

    generated = PAGES[page](load_families())
    assert (DOCS / page).read_text() == generated, (
        f"docs/{page} is stale: run python -m audit.docgen"
    )
