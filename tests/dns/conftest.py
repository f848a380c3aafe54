"""Shared fixtures of the dns tests: one signed lab (NSD on loopback) per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from audit.evaluate import BoundRule, evaluate_rule
from audit.models import Finding, Observation, Resource
from audit.plugins import CheckContext, Scope
from audit.policy import load_policy
from audit.registry import load_families
from checks.dns import FAMILY
from checks.dns.lab import DnsLab, Domain

POLICIES = Path(__file__).parents[2] / "policies"
LOOPBACK = Scope(networks=("127.0.0.0/8",))
SILENT_NAMESERVER = "127.0.2.9"
"""A nameserver address where nothing listens: UDP questions go unanswered."""

needs_lab = pytest.mark.skipif(
    any(shutil.which(p) is None for p in ("nsd", "ldns-keygen", "ldns-signzone")),
    reason="nsd and ldnsutils are not installed",
)


@pytest.fixture(scope="session")
def dns_lab() -> Iterator[DnsLab]:
    if any(shutil.which(p) is None for p in ("nsd", "ldns-keygen", "ldns-signzone")):
        pytest.skip("nsd and ldnsutils are not installed")
    silent = {"ns1.lame.test.": "127.0.0.1", "ns2.lame.test.": SILENT_NAMESERVER}
    with DnsLab(domains=[Domain("lame.test", ns=silent)]) as lab:
        yield lab


def context(
    lab: DnsLab, scope: Scope = LOOPBACK, timeout: float = 10.0, **extra: Any
) -> CheckContext:
    options = {"dns": {**lab.options["dns"], **extra}}
    return CheckContext(timeout=timeout, scope=scope, options=options)


def scan(uri: str, ctx: CheckContext) -> Observation:
    """Parse and collect one target the way the engine does (after the scope guard)."""
    return FAMILY.collect(FAMILY.parse(urlsplit(uri), uri), ctx)


def zone(lab: DnsLab, domain: str, **extra: Any) -> Resource:
    """The one resource a scan of ``dns://domain`` returns (fails loudly otherwise)."""
    observation = scan(f"dns://{domain}", context(lab, **extra))
    assert not observation.problems, observation.problems
    (resource,) = observation.resources
    return resource


def verdict(rule_id: str, resource: Resource, **params: object) -> Finding:
    """One rule of the dns-hygiene pack on one resource, as a scan would judge it."""
    policy = load_policy(POLICIES / "dns-hygiene.yaml", load_families().fact_catalogue())
    (rule,) = [r for r in policy.rules if r.id == rule_id]
    return evaluate_rule(BoundRule(rule, {**policy.params, **params}), resource)
