"""The scope guard: nothing outside the declared perimeter is ever admitted."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fakes import FACTS_FAMILY
from hypothesis import given
from hypothesis import strategies as st

from audit import registry
from audit.errors import ScopeError
from audit.models import Target
from audit.plugins import Reach, Scope
from audit.registry import Families
from audit.scope import ScopeGuard, _is_name


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


# --- targets of another scope kind: admitted by their family's hook -------------------


def account_families(*urls: str) -> Families:
    """A family of scope kind ``account`` whose hook says its check calls ``urls``."""

    def admit(target: Target, scope: Scope, options: Mapping[str, Any]) -> tuple[Reach, ...]:
        return tuple(Reach(url, target.from_command_line) for url in urls)

    family = replace(FACTS_FAMILY, name="cloud", schemes=("cloud",), scope_kind="account")
    return Families(
        {"cloud": replace(family, admit=admit)}, {"cloud": replace(family, admit=admit)}
    )


def account(cli: bool = False) -> Target:
    return Target(uri="cloud://acct", scheme="cloud", host="acct", from_command_line=cli)


def test_a_kind_without_an_admission_hook_is_refused_not_waved_through() -> None:
    family = replace(FACTS_FAMILY, name="cloud", schemes=("cloud",), scope_kind="account")
    with pytest.raises(ScopeError, match="no admission hook"):
        ScopeGuard(DECLARED).admit([account()], Families({"cloud": family}, {"cloud": family}))


HOOKLESS = """\
from audit.plugins import CheckFamily

FAMILY = CheckFamily(
    name="cloud", description="d", schemes=("cloud",), resource_types=(),
    parse=print, collect=print, scope_kind="account",
)
"""


def test_a_kind_without_an_admission_hook_is_refused_at_registration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hookless").mkdir()
    (tmp_path / "hookless" / "__init__.py").write_text("")
    (tmp_path / "hookless" / "cloud.py").write_text(HOOKLESS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "DEFAULT_FAMILIES", ("hookless.cloud:FAMILY",))
    with pytest.raises(registry.PluginError, match="no admit hook"):
        registry.load_families(frozenset({"cloud"}))


def test_an_unknown_scope_kind_is_refused_at_registration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "oddkind").mkdir()
    (tmp_path / "oddkind" / "__init__.py").write_text("")
    module = HOOKLESS.replace('scope_kind="account"', 'scope_kind="galaxy", admit=print')
    (tmp_path / "oddkind" / "cloud.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "DEFAULT_FAMILIES", ("oddkind.cloud:FAMILY",))
    with pytest.raises(registry.PluginError, match="unknown scope kind 'galaxy'"):
        registry.load_families(frozenset({"cloud"}))


@pytest.mark.parametrize(
    "url",
    [
        "https://203.0.113.9",
        "https://api.example.gouv.fr:8443",
        "http://127.0.0.1:9000",
        "http://localhost:9000",
        "https://fcu.{region}.example.gouv.fr",
    ],
)
def test_endpoints_inside_the_scope_are_admitted(url: str) -> None:
    assert ScopeGuard(DECLARED).admit([account()], account_families(url))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://198.51.100.7", "address 198.51.100.7 is not inside the declared scope"),
        ("https://[2001:db9::1]", "not inside the declared scope"),
        ("https://api.example.invalid", "does not resolve"),
        ("http://203.0.113.9", "plain http:// would send credentials in clear text"),
        ("http://api.example.gouv.fr", "plain http://"),
        ("https://fcu.{region}.example.org", "only a declared domain covering 'example.org'"),
        ("http://fcu.{region}.example.gouv.fr", "plain http://"),
    ],
)
def test_endpoints_outside_the_scope_or_in_clear_text_are_refused(url: str, why: str) -> None:
    with pytest.raises(ScopeError, match=re.escape(why)):
        ScopeGuard(DECLARED).admit([account()], account_families(url))


def test_no_scope_admits_loopback_endpoints_and_command_line_ones_only() -> None:
    guard = ScopeGuard(Scope())
    assert guard.admit([account()], account_families("http://127.0.0.2:9", "https://[::1]"))
    assert guard.admit([account(cli=True)], account_families("https://198.51.100.7"))
    with pytest.raises(ScopeError, match="no scope declared"):
        guard.admit([account()], account_families("https://198.51.100.7"))
    with pytest.raises(
        ScopeError, match="plain http://"
    ):  # the command line licenses no clear text
        guard.admit([account(cli=True)], account_families("http://198.51.100.7"))


@pytest.mark.parametrize(
    ("host", "admitted"),
    [
        ("mx1.example.gouv.fr", True),  # under a declared domain
        ("203.0.113.25", True),
        ("localhost", True),  # resolves inside 127.0.0.0/8
        ("MX1.Example.Gouv.FR.", True),
        ("198.51.100.25", False),
        ("mx.evil.example", False),
        ("example.gouv.fr.evil.org", False),
        ("a b", False),
        ("host/24", False),
    ],
)
def test_a_derived_host_passes_the_guard_first(host: str, admitted: bool) -> None:
    # Given a target whose check found another host on the wire (an MX, a redirect)
    parent = target("example.gouv.fr", cli=True)
    guard = ScopeGuard(DECLARED, resolver_timeout=1.0)
    # When it asks the guard, then only what the scope holds is admitted, with its addresses
    if admitted:
        derived = guard.admit_derived(host, parent, "MX")
        assert derived.host == host.lower().rstrip(".")
        assert not derived.from_command_line
        assert "(MX " in derived.uri
    else:
        with pytest.raises(ScopeError):
            guard.admit_derived(host, parent, "MX")


def test_a_derived_host_is_never_named_on_the_command_line() -> None:
    # With no scope declared, the parent was typed by the operator; what it points to was not
    parent = target("203.0.113.10", cli=True)
    guard = ScopeGuard(Scope(), resolver_timeout=1.0)
    with pytest.raises(ScopeError, match="no scope declared"):
        guard.admit_derived("203.0.113.11", parent, "redirect")
    assert guard.admit_derived("127.0.0.1", parent, "redirect").addresses == ("127.0.0.1",)
    assert guard.admit_derived("localhost", parent, "redirect").addresses


def test_a_derived_host_with_addresses_from_the_checks_resolver_is_judged_on_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a check that resolved a host with the resolvers the user chose (a DNS family)
    import audit.scope

    def no_system_lookup(*args: object, **kwargs: object) -> object:
        raise AssertionError("the system resolver was asked")

    monkeypatch.setattr(audit.scope, "resolve_all", no_system_lookup)
    parent = target("example.gouv.fr", cli=True)
    unscoped = ScopeGuard(Scope())
    # Then the guard judges those addresses, pins them, and asks no resolver of its own
    derived = unscoped.admit_derived("mx.lab.test", parent, "MX", addresses=["127.0.0.1"])
    assert derived.addresses == ("127.0.0.1",)
    with pytest.raises(ScopeError, match="no scope declared"):
        unscoped.admit_derived("mx.lab.test", parent, "MX", addresses=["192.0.2.7"])
    with pytest.raises(ScopeError, match="does not resolve"):
        unscoped.admit_derived("mx.lab.test", parent, "MX", addresses=[])
    declared = ScopeGuard(DECLARED)
    assert declared.admit_derived("mx.example.gouv.fr", parent, "MX", addresses=[]).host


def test_a_domain_target_is_judged_by_its_name_without_a_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a family that reads a domain's records (dns://, mail://), scope kind "domain"
    import audit.scope
    from audit.registry import load_families

    def no_system_lookup(*args: object, **kwargs: object) -> object:
        raise AssertionError("the system resolver was asked")

    monkeypatch.setattr(audit.scope, "resolve_all", no_system_lookup)
    families = load_families()
    assert {families.by_scheme[s].scope_kind for s in ("dns", "mail")} == {"domain"}

    def domain(name: str, cli: bool = False) -> Target:
        return Target(uri=f"dns://{name}", scheme="dns", host=name, from_command_line=cli)

    # Then a declared domain admits its names, with no address (none is contacted)
    (admitted,) = ScopeGuard(DECLARED).admit([domain("mail.example.gouv.fr")], families)
    assert admitted.addresses == ()
    with pytest.raises(ScopeError, match="not under a declared domain"):
        ScopeGuard(DECLARED).admit([domain("example.org")], families)
    # And with no scope, only what the operator typed (or localhost) passes
    assert ScopeGuard(Scope()).admit([domain("example.org", cli=True)], families)
    assert ScopeGuard(Scope()).admit([domain("localhost")], families)
    with pytest.raises(ScopeError, match="no scope declared"):
        ScopeGuard(Scope()).admit([domain("example.org")], families)


@given(
    st.one_of(
        st.text(alphabet="0123456789abcdefABCDEFgxz.:%/-", max_size=40),
        st.ip_addresses().map(str),
        st.sampled_from(
            ["fe80::1%eth0", "::ffff:127.0.0.1", "2001:DB8::A", "cafe.de", "1.2.3", "", "::"]
        ),
    )
)
def test_a_host_is_a_name_exactly_when_it_is_no_address(host: str) -> None:
    """The guard's quick reading of a host (no exception raised for a plain name) says
    what ``ipaddress`` says: an address is not a name, anything else without ``/`` is."""
    try:
        ipaddress.ip_address(host)
        address = True
    except ValueError:
        address = False
    assert _is_name(host) == ("/" not in host and not address)
