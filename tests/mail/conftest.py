"""Shared fixtures of the mail tests: one mail lab per module, helpers to run the family.

The lab is the dns family's NSD (signed lab root, ``test.`` and the mail zones), nginx for
the MTA-STS policy hosts and two STARTTLS MX servers, all on loopback
(:mod:`checks.mail.lab`). Tests that need it are skipped when nsd, ldnsutils or nginx
are missing (``make sysdeps`` installs them).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from audit.evaluate import BoundRule, evaluate_rule
from audit.models import Finding, Observation, Resource
from audit.plugins import CheckContext, Scope
from audit.policy import load_policy
from audit.registry import load_families
from checks.mail import FAMILY
from checks.mail.lab import DOMAINS, MailLab, nginx_available, running

POLICIES = Path(__file__).parents[2] / "policies"
LAB_SCOPE = Scope(networks=("127.0.0.1/32",), domains=DOMAINS)
"""127.0.0.1 and the lab's mail domains; ``elsewhere.test`` (127.0.0.2) stays outside."""


def missing_programs() -> list[str]:
    programs = ["nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds"]
    missing = [p for p in programs if shutil.which(p) is None]
    try:
        from checks.dns.lab import DnsLab  # noqa: F401
    except ImportError:
        missing.append("the dns family's lab")
    return missing + ([] if nginx_available() else ["nginx"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailLab]:
    missing = missing_programs()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make sysdeps installs them)")
    with running(tmp_path_factory.mktemp("mail-lab")) as started:
        yield started


def context(lab: MailLab, **changes: Any) -> CheckContext:
    """The scan context of the lab: its resolver and anchors, its CA, its scope."""
    ctx = CheckContext(timeout=20, ca_file=lab.pki.ca_file, scope=LAB_SCOPE, options=lab.options)
    return replace(ctx, **changes)


def observe(uri: str, ctx: CheckContext) -> Observation:
    """Parse and collect one target the way the engine does."""
    target = FAMILY.parse(urlsplit(uri), uri)
    return FAMILY.collect(target, ctx)


def domain_of(observation: Observation) -> Resource:
    """The ``mail.domain`` resource of an observation."""
    (resource,) = [r for r in observation.resources if r.type == "mail.domain"]
    return resource


def verdict(rule_id: str, resource: Resource, **params: object) -> Finding:
    """One rule of ``mail-auth`` on one resource, as a scan would judge it."""
    policy = load_policy(POLICIES / "mail-auth.yaml", load_families().fact_catalogue())
    (rule,) = [r for r in policy.rules if r.id == rule_id]
    return evaluate_rule(BoundRule(rule, {**policy.params, **params}), resource)
