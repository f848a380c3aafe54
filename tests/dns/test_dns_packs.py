"""The dns-hygiene pack on real zones of the lab: every rule passes on one and fails on another."""

from __future__ import annotations

import pytest

from audit.models import Reason, Status
from audit.plugins import Scope
from checks.dns.lab import DnsLab

from .conftest import context, scan, verdict, zone

CASES = [
    # rule, a zone it passes on, a zone it fails on
    ("DNS-DNSSEC-001", "secure.test", "flawed.test"),
    ("DNS-DNSSEC-001", "nsec3.test", "expired.test"),
    ("DNS-ALG-001", "secure.test", "legacy.test"),
    ("DNS-ALG-002", "secure.test", "legacy.test"),
    ("DNS-DS-001", "secure.test", "legacy.test"),
    ("DNS-NSEC3-001", "nsec3-bcp.test", "nsec3.test"),
    ("DNS-NSEC3-002", "nsec3-bcp.test", "nsec3.test"),
    ("DNS-SIG-001", "secure.test", "expired.test"),
    ("DNS-CAA-001", "secure.test", "flawed.test"),
    ("DNS-NS-001", "secure.test", "lonely.test"),
    ("DNS-NS-002", "secure.test", "flawed.test"),
    ("DNS-AXFR-001", "secure.test", "flawed.test"),
    ("DNS-RECURSION-001", "secure.test", "flawed.test"),
    ("DNS-SOA-001", "secure.test", "flawed.test"),
]


@pytest.mark.parametrize(("rule", "good", "bad"), CASES)
def test_each_rule_passes_and_fails_on_real_zones(
    dns_lab: DnsLab, rule: str, good: str, bad: str
) -> None:
    assert verdict(rule, zone(dns_lab, good)).status is Status.PASS
    failed = verdict(rule, zone(dns_lab, bad))
    assert failed.status is Status.FAIL
    assert "{" not in failed.message and bad in failed.message  # the sentence names the zone


def test_every_rule_of_the_pack_has_a_case() -> None:
    from pathlib import Path

    from audit.policy import load_policy
    from audit.registry import load_families

    pack = Path(__file__).parents[2] / "policies" / "dns-hygiene.yaml"
    rules = {r.id for r in load_policy(pack, load_families().fact_catalogue()).rules}
    assert rules == {case[0] for case in CASES}


def test_rules_that_do_not_apply_are_skipped(dns_lab: DnsLab) -> None:
    secure = zone(dns_lab, "secure.test")  # NSEC, not NSEC3
    assert verdict("DNS-NSEC3-001", secure).status is Status.SKIP
    flawed = zone(dns_lab, "flawed.test")  # unsigned: no signatures to expire
    assert verdict("DNS-SIG-001", flawed).status is Status.SKIP


def test_the_signature_threshold_is_a_parameter(dns_lab: DnsLab) -> None:
    secure = zone(dns_lab, "secure.test")  # signed for 4 weeks
    assert verdict("DNS-SIG-001", secure, min_signature_days=30).status is Status.FAIL


def test_a_probe_the_scope_forbade_is_an_error_not_a_pass(dns_lab: DnsLab) -> None:
    ctx = context(dns_lab, scope=Scope(networks=("127.0.0.1/32",)))
    resource = scan("dns://secure.test", ctx).resources[0]  # ns2 (127.0.1.1) unprobed
    finding = verdict("DNS-AXFR-001", resource)
    assert finding.status is Status.ERROR and finding.reason is Reason.UNDECIDABLE


def test_a_chain_nobody_answered_is_an_error(dns_lab: DnsLab) -> None:
    from audit.models import Problem, Resource

    # the facts a scan keeps when the DNSSEC walk timed out (see test_dns_family)
    problem = Problem(Reason.TIMEOUT, "timeout after 1 s from 127.0.0.1:53")
    resource = Resource(
        "dns.zone", "dns://x.test", "dns://x.test", "adhoc", {"zone": "x.test"}, {"dnssec": problem}
    )
    assert verdict("DNS-DNSSEC-001", resource).status is Status.ERROR
