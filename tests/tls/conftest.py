"""Shared fixtures of the tls tests: one PKI per session, helpers to run the family."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from audit.evaluate import BoundRule, evaluate_rule
from audit.models import Finding, Observation, Resource
from audit.plugins import CheckContext
from audit.policy import load_policy
from audit.registry import load_families
from checks.tls import FAMILY, lab

POLICIES = Path(__file__).parents[2] / "policies"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> lab.Pki:
    return lab.Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def rsa_leaf(pki: lab.Pki) -> lab.Issued:
    return pki.issue(["localhost"], key=lab.rsa_key(2048))


@pytest.fixture(scope="session")
def ec_leaf(pki: lab.Pki) -> lab.Issued:
    return pki.issue(["localhost"])


def scan(uri: str, ca_file: str | None = None, timeout: float = 10.0) -> Observation:
    """Parse and collect one target the way the engine does."""
    target = FAMILY.parse(urlsplit(uri), uri)
    return FAMILY.collect(target, CheckContext(timeout=timeout, ca_file=ca_file))


def facts_of(uri: str, ca_file: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Facts of the single resource a scan returns (fails loudly otherwise)."""
    observation = scan(uri, ca_file, timeout)
    assert not observation.problems, observation.problems
    assert len(observation.resources) == 1
    return dict(observation.resources[0].facts)


def verdict(pack: str, rule_id: str, resource: Resource, **params: object) -> Finding:
    """One rule of a shipped pack on one resource, as a scan would judge it."""
    policy = load_policy(POLICIES / f"{pack}.yaml", load_families().fact_catalogue())
    (rule,) = [r for r in policy.rules if r.id == rule_id]
    return evaluate_rule(BoundRule(rule, {**policy.params, **params}), resource)


@pytest.fixture(scope="module")
def modern_server(ec_leaf: lab.Issued) -> Iterator[lab.PythonTlsServer]:
    context = lab.server_context(ec_leaf)
    with lab.PythonTlsServer(
        context, hsts="max-age=63072000; includeSubDomains; preload"
    ) as server:
        yield server


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    return tmp_path
