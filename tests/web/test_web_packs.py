"""Each rule of the web-headers and security-txt packs, passing and failing on real sites."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import Problem, Reason, Resource, Status
from checks.web import lab

from .conftest import facts_of, site, verdict

HTTP_PORTS = {"hardened": "upgrade", "bare": "plain"}
CASES = [
    ("web-headers", "WEBH-CSP-001", "hardened", "bare"),
    ("web-headers", "WEBH-CSP-002", "nonce", "inline"),
    ("web-headers", "WEBH-CSP-003", "hardened", "inline"),
    ("web-headers", "WEBH-FRAME-001", "nonce", "bare"),
    ("web-headers", "WEBH-XCTO-001", "hardened", "bare"),
    ("web-headers", "WEBH-REF-001", "hardened", "bare"),
    ("web-headers", "WEBH-COOKIE-001", "hardened", "bare"),
    ("web-headers", "WEBH-COOKIE-002", "hardened", "bare"),
    ("web-headers", "WEBH-COOKIE-003", "hardened", "bare"),
    ("web-headers", "WEBH-SRI-001", "hardened", "bare"),
    ("web-headers", "WEBH-CORS-001", "hardened", "cors"),
    ("web-headers", "WEBH-REDIR-001", "hardened", "bare"),
    ("web-headers", "WEBH-HSTS-001", "hardened", "bare"),
    ("web-headers", "WEBH-DISC-001", "hardened", "bare"),
    ("security-txt", "SECTXT-PRESENT-001", "hardened", "bare"),
    ("security-txt", "SECTXT-EXPIRES-001", "hardened", "expired"),
    ("security-txt", "SECTXT-CONTACT-001", "hardened", "nocontact"),
]
_SEEN: dict[str, Resource] = {}


def resource_of(web: lab.NginxLab, ca_file: str, name: str) -> Resource:
    if name not in _SEEN:
        plain = HTTP_PORTS.get(name)
        facts = facts_of(site(web, name), ca_file, http_port=web.port(plain) if plain else 0)
        _SEEN[name] = Resource("web.site", facts["url"], facts["url"], "adhoc", facts)
    return _SEEN[name]


@pytest.mark.parametrize(("pack", "rule", "good", "bad"), CASES)
def test_each_rule_passes_and_fails(
    web: lab.NginxLab, pki: lab.Pki, pack: str, rule: str, good: str, bad: str
) -> None:
    passed = verdict(pack, rule, resource_of(web, pki.ca_file, good))
    failed = verdict(pack, rule, resource_of(web, pki.ca_file, bad))
    assert passed.status is Status.PASS, passed
    assert failed.status is Status.FAIL, failed
    assert "{" not in failed.message  # every placeholder names a fact


def test_every_rule_of_the_packs_is_tested() -> None:
    from audit.policy import load_policy
    from audit.registry import load_families

    from .conftest import POLICIES

    shipped = {
        rule.id
        for pack in ("web-headers", "security-txt")
        for rule in load_policy(POLICIES / f"{pack}.yaml", load_families().fact_catalogue()).rules
    }
    assert shipped == {case[1] for case in CASES}


def test_an_unknown_security_txt_is_an_error_never_a_pass() -> None:
    problem = Problem(Reason.TIMEOUT, "no answer in time")
    facts: dict[str, Any] = {"url": "https://x/", "security_txt": None}
    resource = Resource(
        "web.site", "https://x/", "https://x/", "adhoc", facts, {"security_txt": problem}
    )
    assert verdict("security-txt", "SECTXT-PRESENT-001", resource).status is Status.ERROR


@pytest.mark.parametrize(("max_age", "status"), [(86400, Status.FAIL), (15552000, Status.PASS)])
def test_hsts_asks_six_months(max_age: int, status: Status) -> None:
    hsts = {"present": True, "max_age": max_age, "include_subdomains": False, "preload": False}
    resource = Resource(
        "web.site", "https://x/", "https://x/", "adhoc", {"url": "https://x/", "hsts": hsts}
    )
    assert verdict("web-headers", "WEBH-HSTS-001", resource).status is status
