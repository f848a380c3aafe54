"""A tiny in-process check family for testing the engine, store and CLI.

``facts://NAME`` observes nothing on the network: it returns the resources that the test
put in ``ctx.options['facts'][NAME]`` (or a problem). It exercises the same plugin
contract as the real families without standing in for any of our network code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import SplitResult

import pytest

from audit.errors import TargetError
from audit.models import Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext, CheckFamily, FactDoc, ResourceTypeDoc
from audit.registry import Families


def _parse(split: SplitResult, raw: str) -> Target:
    if not split.hostname:
        raise TargetError(f"{raw!r}: missing name")
    return Target(uri=f"facts://{split.hostname}", scheme="facts", host="127.0.0.1")


def _collect(target: Target, ctx: CheckContext) -> Observation:
    spec = ctx.family_options("facts").get(target.uri.removeprefix("facts://"), {})
    if "sleep" in spec:
        time.sleep(spec["sleep"])
    if "problem" in spec:
        return Observation(target, problems=(Problem(Reason(spec["problem"]), "planted"),))
    resources = tuple(
        Resource(
            type=r.get("type", "demo.item"),
            key=r["key"],
            target=target.uri,
            system=target.system,
            facts=r["facts"],
            unknown={k: Problem(Reason(v), f"{k} denied") for k, v in r.get("unknown", {}).items()},
        )
        for r in spec.get("resources", [])
    )
    return Observation(target, resources=resources)


FACTS_FAMILY = CheckFamily(
    name="facts",
    description="Resources given by the test",
    schemes=("facts",),
    resource_types=(
        ResourceTypeDoc(
            "demo.item",
            "An item",
            (FactDoc("port", "int", "a port"), FactDoc("tags", "list", "tags")),
        ),
    ),
    parse=_parse,
    collect=_collect,
)


@pytest.fixture
def families() -> Families:
    return Families({"facts": FACTS_FAMILY}, {"facts": FACTS_FAMILY})


@pytest.fixture
def policy_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "demo.yaml"
    path.write_text("""\
policy: demo
title: Demo
params:
  allowed: {default: [80, 443]}
rules:
  - id: DEMO-PORT-001
    title: Only allowed ports
    resource: demo.item
    expect: {key: port, op: in, param: allowed}
    severity: high
    remediation: Close it.
  - id: DEMO-TAG-001
    title: Tagged with owner
    resource: demo.item
    where: {key: port, op: ne, value: 25}
    expect: {key: tags, op: contains, value: owner}
    severity: low
    remediation: Tag it.
""")
    yield path
