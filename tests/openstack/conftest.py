"""One lab per session: the real Keystone from ``.venv-keystone`` and the faked services.

Keystone is installed by ``make keystone-venv`` (``make test`` depends on it); when the
environment is missing, the fixture runs that target itself, so a fresh clone's test run
installs what it needs. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from audit.models import Observation, Target
from audit.plugins import CheckContext, Scope
from checks.openstack import FAMILY
from checks.openstack.collect import observe
from checks.openstack.config import load
from checks.openstack.lab import Lab, keystone_installed
from checks.openstack.session import Api, Settings

REPO = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if not keystone_installed():
        subprocess.run(["make", "-s", "keystone-venv"], cwd=REPO, check=True, timeout=900)
    with Lab() as running:
        running.seed()
        with pytest.MonkeyPatch.context() as mp:
            for name, value in running.environment().items():
                mp.setenv(name, value)
            mp.delenv("OS_CLOUD", raising=False)
            yield running


@pytest.fixture
def clean_faults(lab: Lab) -> Iterator[Lab]:
    """The lab, with any fault a test set removed afterwards."""
    yield lab
    assert lab.fake is not None
    lab.fake.faults.clear()


def parse(raw: str) -> Target:
    return FAMILY.parse(urlsplit(raw), raw)


def declared(lab: Lab, projects: tuple[str, ...] = ("lab",)) -> Scope:
    """A declared scope holding loopback, the lab's Keystone and ``projects``."""
    return Scope(
        networks=("127.0.0.1/32",),
        blocks={"openstack": {"auth_urls": (lab.auth_url,), "projects": projects}},
    )


def scan(raw: str, scope: Scope | None = None, attempts: int = 1) -> tuple[Observation, Api]:
    """Observe through the family's own path, keeping the Api to inspect its calls."""
    target = parse(raw)
    ctx = CheckContext(timeout=10, scope=scope or Scope())
    api = Api(load(target, ctx.timeout), target, ctx, Settings(max_attempts=attempts))
    resources, problems = observe(target, ctx, api)
    return Observation(target, resources, problems), api


def by_type(obs: Observation, type_: str) -> dict[str, dict[str, object]]:
    """Resources of one type, by their ``id`` (or ``name``) fact."""
    found = {}
    for r in obs.resources:
        if r.type == type_:
            found[str(r.facts.get("id", r.facts.get("name")))] = dict(r.facts)
    return found
