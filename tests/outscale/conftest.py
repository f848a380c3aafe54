"""One fake OAPI per test (cheap: a thread), aimed at by an osc-sdk-python profile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from audit.models import Observation, Target
from audit.plugins import CheckContext, Scope
from checks.outscale import FAMILY
from checks.outscale.lab import FakeOapi, write_profile


@pytest.fixture
def oapi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOapi]:
    for name in ("OSC_ACCESS_KEY", "OSC_SECRET_KEY", "OSC_PROFILE", "OSC_ENDPOINT_API"):
        monkeypatch.delenv(name, raising=False)
    with FakeOapi() as fake:
        monkeypatch.setenv("OSC_CONFIG_FILE", str(write_profile(tmp_path, fake.endpoint)))
        yield fake


def parse(raw: str) -> Target:
    return FAMILY.parse(urlsplit(raw), raw)


def scan(raw: str = "outscale://lab", scope: Scope | None = None) -> Observation:
    ctx = CheckContext(
        timeout=10, scope=scope or Scope(), options={"outscale": {"max_attempts": 2}}
    )
    return FAMILY.collect(parse(raw), ctx)


def by_type(obs: Observation, type_: str) -> dict[str, dict[str, object]]:
    return {str(r.facts.get("id", r.key)): dict(r.facts) for r in obs.resources if r.type == type_}
