"""The scope guard: what may be observed, decided before anything is sent.

Scope is law for every packet. A target outside the declared perimeter is refused when the
scan is planned; with no scope declared, only loopback targets and targets named on the
command line are scanned. The endpoints a check calls beyond its target (a cloud API) and
the hosts a check derives from what it observed (an MX host, a redirect's ``Location``)
pass the same guard first: :meth:`ScopeGuard.admit_derived` is how a check asks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from audit.errors import ScopeError
from audit.models import Target
from audit.plugins import Reach, Scope
from audit.registry import Families
from audit.uri import resolve_all

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
RESOLVE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ScopeGuard:
    """Decides, before anything is sent, which targets may be observed."""

    scope: Scope
    resolver_timeout: float = RESOLVE_TIMEOUT_S

    def networks(self) -> tuple[IPNetwork, ...]:
        """The declared networks, parsed."""
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.scope.networks)

    def admit(
        self,
        targets: Sequence[Target],
        families: Families,
        options: Mapping[str, Any] | None = None,
    ) -> tuple[Target, ...]:
        """Return the targets with pinned addresses, or raise ScopeError for the first refusal.

        A target of another scope kind (an account) is admitted by its family's ``admit``
        hook, given the family's inventory settings (``options``); the endpoints the hook
        returns pass the same checks as network targets, resolved in the same lookup.
        """
        kinds = [families.by_scheme[t.scheme].scope_kind for t in targets]
        reaches = [
            None if kind == "domain" else _reaches(t, families, self.scope, options or {})
            for t, kind in zip(targets, kinds, strict=True)
        ]
        names = {
            t.host
            for t, r, kind in zip(targets, reaches, kinds, strict=True)
            if r is None and kind == "network"
        }
        names |= {_url_host(reach.url) for found in reaches for reach in found or ()}
        lookups = sorted(n for n in names if _is_name(n) and "{" not in n)
        resolved = resolve_all(lookups, self.resolver_timeout) if lookups else {}
        admitted = []
        for target, found, kind in zip(targets, reaches, kinds, strict=True):
            if kind == "domain":
                admitted.append(self._admit_domain(target))
                continue
            if found is None:
                admitted.append(self._admit_one(target, resolved.get(target.host, ())))
                continue
            for reach in found:
                self._admit_reach(target, reach, resolved)
            admitted.append(target)
        return tuple(admitted)

    def admit_derived(
        self,
        host: str,
        parent: Target,
        how: str,
        addresses: Sequence[str] | None = None,
    ) -> Target:
        """A host a check derived from what it observed, admitted before any packet.

        An MX host, a redirect's ``Location``, an MTA-STS policy host: the check found it
        on the wire, so it is never "named on the command line" and, with no scope
        declared, only loopback passes. Returns the parent target re-aimed at ``host``,
        with the addresses to connect to pinned (connect to those, not to a new lookup);
        raises ScopeError (record it, contact nothing) when the scope does not hold it.
        ``how`` says in the message where the host came from ("MX", "redirect").
        ``addresses``: what the check's own resolver answered for ``host`` (a DNS
        family asks the resolvers the user chose, not the system's); the guard then
        judges those and sends no query of its own.
        """
        from audit.uri import is_hostname

        name = host.strip().lower().rstrip(".").strip("[]")
        subject = replace(
            parent,
            uri=f"{parent.uri} ({how} {name})",
            host=name,
            from_command_line=False,
            addresses=(),
        )
        if "/" in name or (_is_name(name) and not is_hostname(name)):
            raise ScopeError(f"{subject.uri}: {host!r} is not a host name or an address")
        if not _is_name(name):
            return replace(
                self._admit_one(subject, ()), addresses=(str(ipaddress.ip_address(name)),)
            )
        if addresses is not None:
            given = tuple(str(ipaddress.ip_address(a)) for a in addresses)
            return self._admit_one(subject, given)
        return self._admit_one(subject, resolve_all([name], self.resolver_timeout).get(name, ()))

    def _admit_domain(self, target: Target) -> Target:
        """A domain whose records a family reads (``dns://``, ``mail://``): judged by its
        name alone. Its own addresses are never contacted (the family asks resolvers, and
        admits each server it derives), so the guard sends no lookup for it: a domain
        with no A record is a domain all the same. With a scope, it must lie under a
        declared domain; without one, only a domain named on the command line (or
        ``localhost``) passes."""
        from audit.uri import is_hostname

        host = target.host
        if not _is_name(host) or not is_hostname(host):
            raise ScopeError(f"{target.uri}: {host!r} is not a domain name")
        if self.scope.is_declared:
            if _under_domain(host, self.scope.domains):
                return target
            raise ScopeError(
                f"{target.uri}: domain {host!r} is not under a declared domain (scope: domains)"
            )
        _refuse_unscoped(target, host == "localhost" or host.endswith(".localhost"))
        return target

    def _admit_reach(
        self, target: Target, reach: Reach, resolved: Mapping[str, tuple[str, ...]]
    ) -> None:
        """An endpoint a check calls passes the guard as a target would, in its name."""
        split = urlsplit(reach.url)
        host = _url_host(reach.url)
        subject = replace(
            target,
            uri=f"{target.uri} (endpoint {reach.url})",
            host=host,
            from_command_line=reach.named_on_command_line,
            addresses=(),
        )
        if "{" in host:
            self._check_pattern(subject, split.scheme)
            return
        pinned = self._admit_one(subject, resolved.get(host, ()))
        if split.scheme == "http":
            _refuse_clear_text(subject, pinned.addresses if _is_name(host) else (host,))

    def _check_pattern(self, subject: Target, scheme: str) -> None:
        """A host per region: only a declared domain covering every substitution admits it."""
        labels = subject.host.split(".")
        last = max(i for i, label in enumerate(labels) if "{" in label)
        domain = ".".join(labels[last + 1 :])
        if scheme == "http":
            _refuse_clear_text(subject, ())
        if not self.scope.is_declared:
            _refuse_unscoped(subject, is_loopback=False)
            return
        if domain and _under_domain(domain, self.scope.domains):
            return
        raise ScopeError(
            f"{subject.uri}: {subject.host!r} stands for a host per region, so only a "
            f"declared domain covering {domain or 'it'!r} can admit it"
        )

    def _admit_one(self, target: Target, addresses: tuple[str, ...]) -> Target:
        host = target.host
        if "/" in host:
            self._check_network(target, ipaddress.ip_network(host, strict=False))
            return target
        if not _is_name(host):
            self._check_address(target, ipaddress.ip_address(host))
            return target
        return self._check_name(target, addresses)

    def _check_network(self, target: Target, net: IPNetwork) -> None:
        if self.scope.is_declared:
            if any(_subnet_of(net, declared) for declared in self.networks()):
                return
            raise ScopeError(f"{target.uri}: network {net} is not inside the declared scope")
        _refuse_unscoped(target, net.is_loopback)

    def _check_address(
        self, target: Target, address: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> None:
        if self.scope.is_declared:
            if any(address in net for net in self.networks()):
                return
            raise ScopeError(f"{target.uri}: address {address} is not inside the declared scope")
        _refuse_unscoped(target, address.is_loopback)

    def _check_name(self, target: Target, addresses: tuple[str, ...]) -> Target:
        host = target.host
        if self.scope.is_declared and _under_domain(host, self.scope.domains):
            return replace(target, addresses=addresses)
        if not addresses:
            raise ScopeError(
                f"{target.uri}: {host!r} does not resolve, so it cannot be shown "
                "to be inside the scope"
            )
        parsed = [ipaddress.ip_address(a) for a in addresses]
        if self.scope.is_declared:
            outside = [str(a) for a in parsed if not any(a in n for n in self.networks())]
            if outside:
                raise ScopeError(
                    f"{target.uri}: {host!r} is not under a declared domain and "
                    f"resolves outside the declared networks ({outside[0]})"
                )
        else:
            _refuse_unscoped(target, all(a.is_loopback for a in parsed))
        return replace(target, addresses=addresses)


def _reaches(
    target: Target, families: Families, scope: Scope, options: Mapping[str, Any]
) -> tuple[Reach, ...] | None:
    """None for a network target; else what its family's ``admit`` hook says it calls.

    A family of another scope kind without that hook is refused: the guard never
    admits what it cannot check.
    """
    family = families.by_scheme[target.scheme]
    if family.scope_kind == "network":
        return None
    if family.admit is None:
        raise ScopeError(
            f"{target.uri}: the {family.name} family's targets (scope kind "
            f"{family.scope_kind!r}) have no admission hook, so none can be admitted"
        )
    block = options.get(family.name)
    return family.admit(target, scope, block if isinstance(block, Mapping) else {})


def _url_host(url: str) -> str:
    """The host of an endpoint URL (its family validated it), lower-cased, no brackets."""
    return (urlsplit(url).hostname or "").rstrip(".")


def _refuse_clear_text(subject: Target, addresses: Sequence[str]) -> None:
    """Plain http carries signed requests and session tokens readable on the path."""
    parsed = [ipaddress.ip_address(a) for a in addresses]
    if parsed and all(a.is_loopback for a in parsed):
        return
    raise ScopeError(
        f"{subject.uri}: plain http:// would send credentials in clear text; "
        "it is allowed to a loopback endpoint only (use https://)"
    )


def _refuse_unscoped(target: Target, is_loopback: bool) -> None:
    """With no scope declared, only loopback and command-line targets may be scanned."""
    if not (is_loopback or target.from_command_line):
        raise ScopeError(
            f"{target.uri}: no scope declared; only loopback targets or "
            "targets named on the command line may be scanned"
        )


_ADDRESS_CHARACTERS = frozenset("0123456789abcdefABCDEF.:")
"""Every character an IP address is written with (a zone index after ``%`` aside)."""


def _is_name(host: str) -> bool:
    if "/" in host:
        return False
    if "%" not in host and not _ADDRESS_CHARACTERS.issuperset(host):
        return True  # a character no address has: said without raising a ValueError
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def _under_domain(host: str, domains: Iterable[str]) -> bool:
    name = host.lower().rstrip(".")
    return any(name == d or name.endswith("." + d) for d in domains)


def _subnet_of(net: IPNetwork, declared: IPNetwork) -> bool:
    if net.version != declared.version:
        return False
    return net.subnet_of(declared)  # type: ignore[arg-type]
