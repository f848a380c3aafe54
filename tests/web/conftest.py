"""Shared fixtures of the web tests: one PKI and one nginx serving every lab site."""

from __future__ import annotations

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
from audit.scope import ScopeGuard
from checks.web import FAMILY, lab

POLICIES = Path(__file__).parents[2] / "policies"
NONCE_CSP = (
    "script-src 'nonce-r4nd0m' 'unsafe-inline' 'strict-dynamic' https:; "
    "object-src 'none'; base-uri 'none'"
)
CHAIN = (
    "location = /start { return 301 /next?ticket=ST-s3cr3t; }",
    "location = /next { return 302 https://127.0.0.1:$server_port/out; }",
    "location = /out { return 302 https://192.0.2.10/; }",
)


def sites() -> list[lab.Site]:
    return [
        lab.hardened_site(),
        lab.Site(
            "bare",
            (("Set-Cookie", "sessionid=x1; Path=/"), ("X-CSRF-Token", "s3cr3t")),
            lab.BARE_PAGE,
            tokens=True,
        ),
        lab.Site(
            "nonce",
            (("Content-Security-Policy", NONCE_CSP), ("X-Frame-Options", "SAMEORIGIN")),
            '<script nonce="r4nd0m">go()</script>',
        ),
        lab.Site(
            "cors",
            (
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Credentials", "true"),
            ),
        ),
        lab.Site("leaving", locations=CHAIN),
        lab.Site("expired", security_txt=lab.security_txt("2020-06-01T00:00:00Z")),
        lab.Site(
            "inline",
            (("Content-Security-Policy", "default-src 'self' 'unsafe-inline' 'unsafe-eval'"),),
        ),
        lab.Site("nocontact", security_txt="Expires: 2099-01-01T00:00:00Z\n"),
        lab.Site("badhop", redirect="https://localhost:99999/x"),
        lab.Site("upgrade", redirect="https://localhost:{port[hardened]}/", plain=True),
        lab.Site("plain", plain=True),
    ]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> lab.Pki:
    return lab.Pki(tmp_path_factory.mktemp("web-pki"))


@pytest.fixture(scope="session")
def web(pki: lab.Pki) -> Iterator[lab.NginxLab]:
    issued = pki.issue(("localhost", "127.0.0.1"))
    with lab.NginxLab(issued, sites()) as running:
        yield running


def scan(
    uri: str,
    ca_file: str | None = None,
    *,
    timeout: float = 10.0,
    http_port: int = 0,
    scope: Scope | None = None,
) -> Observation:
    """Parse, admit and collect one target the way the engine does."""
    target = FAMILY.parse(urlsplit(uri), uri)
    scope = scope or Scope()
    (admitted,) = ScopeGuard(scope).admit([target], load_families())
    ctx = CheckContext(
        timeout=timeout, ca_file=ca_file, scope=scope, options={"web": {"http_port": http_port}}
    )
    return FAMILY.collect(admitted, ctx)


def facts_of(uri: str, ca_file: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Facts of the single resource a scan returns (fails loudly otherwise)."""
    observation = scan(uri, ca_file, **kwargs)
    assert not observation.problems, observation.problems
    (resource,) = observation.resources
    return dict(resource.facts)


def site(web: lab.NginxLab, name: str, path: str = "/") -> str:
    return f"https://localhost:{web.port(name)}{path}"


def verdict(pack: str, rule_id: str, resource: Resource, **params: object) -> Finding:
    """One rule of a shipped pack on one resource, as a scan would judge it."""
    policy = load_policy(POLICIES / f"{pack}.yaml", load_families().fact_catalogue())
    (rule,) = [r for r in policy.rules if r.id == rule_id]
    return evaluate_rule(BoundRule(rule, {**policy.params, **params}), resource)
