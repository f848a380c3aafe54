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
