"""Every rule of ``mail-auth`` passes and fails on real lab domains, and ends ``error`` when
its facts could not be observed."""

from __future__ import annotations

import socket

import pytest

from audit.models import Resource, Status
from checks.mail.lab import MailLab

from .conftest import POLICIES, context, domain_of, observe, verdict

DOMAINS = ("mailgood.test", "mailflawed.test", "mailnodane.test", "nomail.test", "nomailbad.test")


@pytest.fixture(scope="module")
def resources(lab: MailLab) -> dict[str, Resource]:
    found = {name: domain_of(observe(lab.uri(name), context(lab))) for name in DOMAINS}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        resolver = f"127.0.0.1:{silent.getsockname()[1]}"
        options = {"dns": {**lab.options["dns"], "resolvers": [resolver]}}
        ctx = context(lab, timeout=4, options=options)
        found["silent"] = domain_of(observe(lab.uri("mailgood.test"), ctx))
    return found


CASES = [
    ("MAIL-SPF-001", "mailgood.test", "nomailbad.test"),
    ("MAIL-SPF-002", "mailgood.test", "mailflawed.test"),
    ("MAIL-SPF-003", "mailgood.test", "mailflawed.test"),
    ("MAIL-SPF-004", "mailgood.test", "mailflawed.test"),
    ("MAIL-DMARC-001", "mailgood.test", "mailflawed.test"),
    ("MAIL-DMARC-002", "mailgood.test", "mailflawed.test"),
    ("MAIL-DKIM-001", "mailgood.test", "nomail.test"),
    ("MAIL-DKIM-002", "mailgood.test", "mailflawed.test"),
    ("MAIL-MTASTS-001", "mailgood.test", "mailflawed.test"),
    ("MAIL-MTASTS-002", "mailgood.test", "mailflawed.test"),
    ("MAIL-TLSRPT-001", "mailgood.test", "mailflawed.test"),
    ("MAIL-DANE-001", "mailgood.test", "mailnodane.test"),
    ("MAIL-NULL-001", "nomail.test", "nomailbad.test"),
    ("MAIL-NULL-002", "nomail.test", "nomailbad.test"),
    ("MAIL-NULL-003", "nomail.test", "nomailbad.test"),
]


def test_every_rule_of_the_pack_has_a_case() -> None:
    import yaml

    rules = yaml.safe_load((POLICIES / "mail-auth.yaml").read_text())["rules"]
    assert {rule["id"] for rule in rules} == {case[0] for case in CASES}


@pytest.mark.parametrize(("rule_id", "passing", "failing"), CASES)
def test_rule_passes_and_fails(
    resources: dict[str, Resource], rule_id: str, passing: str, failing: str
) -> None:
    assert verdict(rule_id, resources[passing]).status is Status.PASS
    failed = verdict(rule_id, resources[failing])
    assert failed.status is Status.FAIL
    assert failing in failed.message  # the sentence names the domain


@pytest.mark.parametrize(("rule_id", "passing", "failing"), CASES)
def test_rule_on_unanswered_dns_is_an_error(
    resources: dict[str, Resource], rule_id: str, passing: str, failing: str
) -> None:
    finding = verdict(rule_id, resources["silent"])
    assert finding.status is Status.ERROR, finding


@pytest.mark.parametrize(
    ("rule_id", "domain"),
    [
        ("MAIL-NULL-001", "mailgood.test"),
        ("MAIL-MTASTS-001", "nomail.test"),
        ("MAIL-DANE-001", "mailflawed.test"),
        ("MAIL-DKIM-002", "nomail.test"),
    ],
)
def test_rule_does_not_apply(resources: dict[str, Resource], rule_id: str, domain: str) -> None:
    assert verdict(rule_id, resources[domain]).status is Status.SKIP


def test_the_dkim_threshold_is_a_parameter(resources: dict[str, Resource]) -> None:
    finding = verdict("MAIL-DKIM-002", resources["mailflawed.test"], min_dkim_rsa_bits=1024)
    assert finding.status is Status.PASS
