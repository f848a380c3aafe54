"""The scope guard: nothing outside the declared perimeter is ever admitted."""

from __future__ import annotations

import pytest

from audit.errors import ScopeError
from audit.inventory import ScopeGuard
from audit.models import Target
from audit.plugins import Scope
from audit.registry import Families


def target(host: str, cli: bool = False) -> Target:
    return Target(uri=f"facts://{host}", scheme="facts", host=host, from_command_line=cli)


DECLARED = Scope(
    networks=("203.0.113.0/24", "127.0.0.0/8", "2001:db8::/32"), domains=("example.gouv.fr",)
)


@pytest.mark.parametrize(
    "host",
    [
        "203.0.113.10",
        "127.0.0.5",
        "203.0.113.0/28",
        "2001:db8::1",
        "portail.example.gouv.fr",
        "example.gouv.fr",
        "localhost",
    ],
)
def test_inside_declared_scope(host: str, families: Families) -> None:
    admitted = ScopeGuard(DECLARED).admit([target(host)], families)
    assert admitted[0].host == host


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("198.51.100.7", "not inside the declared scope"),
        ("203.0.112.0/23", "not inside the declared scope"),
        ("2001:db9::1", "not inside the declared scope"),
        ("example.gouv.fr.evil.org", "does not resolve"),
        ("notexample.gouv.fr", "does not resolve"),
    ],
)
def test_outside_declared_scope_is_refused(host: str, why: str, families: Families) -> None:
    with pytest.raises(ScopeError, match=why):
        ScopeGuard(DECLARED).admit([target(host)], families)


def test_name_resolving_outside_networks_is_refused(families: Families) -> None:
    # localhost resolves to loopback, which is outside this scope's only network
    scope = Scope(networks=("203.0.113.0/24",))
    with pytest.raises(ScopeError, match="resolves outside the declared networks"):
        ScopeGuard(scope).admit([target("localhost")], families)


def test_resolved_addresses_are_pinned(families: Families) -> None:
    admitted = ScopeGuard(Scope(networks=("127.0.0.0/8", "::1/128"))).admit(
        [target("localhost")], families
    )
    assert admitted[0].addresses and all(a in ("127.0.0.1", "::1") for a in admitted[0].addresses)


def test_no_scope_allows_loopback_and_command_line_only(families: Families) -> None:
    guard = ScopeGuard(Scope())
    assert guard.admit([target("127.0.0.1"), target("::1"), target("127.0.0.0/30")], families)
    assert guard.admit([target("198.51.100.7", cli=True)], families)
    with pytest.raises(ScopeError, match="no scope declared"):
        guard.admit([target("198.51.100.7")], families)
    with pytest.raises(ScopeError, match="no scope declared"):
        guard.admit([target("198.51.100.0/24")], families)
