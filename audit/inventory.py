"""Inventory files, target URIs and the scope guard.

The inventory says what to scan and what we are *allowed* to scan. Every target URI is
validated by its family before anything runs, and the scope guard refuses any target
outside the declared perimeter before a single packet leaves. With no scope declared,
only loopback targets and targets named on the command line are scanned. The endpoints
a check calls beyond its target (a cloud API) pass the same guard first.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.errors import InputError, InventoryError, ScopeError, TargetError
from audit.models import SystemInfo, Target
from audit.plugins import Reach, Scope
from audit.registry import Families
from audit.yamlfile import YamlDocument, format_path, load_yaml

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
RESOLVE_TIMEOUT_S = 5.0


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScopeModel(_Frozen):
    """The authorised perimeter."""

    networks: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    aws_accounts: list[str] = Field(default_factory=list)

    @field_validator("networks")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not a network (CIDR)") from None
        return values

    @field_validator("domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        from audit.uri import is_hostname

        for value in values:
            if not is_hostname(value):
                raise ValueError(f"{value!r} is not a domain name")
        return [v.lower().rstrip(".") for v in values]

    @field_validator("aws_accounts", mode="before")
    @classmethod
    def _accounts(cls, values: Any) -> Any:
        if isinstance(values, list):
            for value in values:
                if not (
                    isinstance(value, str | int) and str(value).isdigit() and len(str(value)) == 12
                ):
                    raise ValueError(
                        f"{value!r} is not a 12-digit AWS account id "
                        "(quote it so YAML keeps leading zeros)"
                    )
            return [str(v) for v in values]
        return values


class SystemModel(_Frozen):
    """A service the committee homologates, with its owner and targets."""

    name: str = Field(min_length=1)
    owner: str = ""
    criticality: Literal["low", "medium", "high", "critical"] = "medium"
    description: str = ""
    targets: list[str] = Field(default_factory=list)


class TrustModel(_Frozen):
    """Extra trust anchors for private PKIs."""

    ca_file: str | None = None


class InventoryModel(_Frozen):
    """An inventory file."""

    scope: ScopeModel = Field(default_factory=ScopeModel)
    systems: list[SystemModel] = Field(default_factory=list)
    policies: list[str] = Field(default_factory=list)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    trust: TrustModel = Field(default_factory=TrustModel)
    sla: dict[Literal["critical", "high", "medium", "low", "info"], int] = Field(
        default_factory=dict
    )


@dataclass(frozen=True)
class Inventory:
    """A validated inventory: systems, targets, scope and settings."""

    source: str | None
    scope: Scope
    systems: tuple[SystemInfo, ...]
    targets: tuple[Target, ...]
    policies: tuple[str, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    ca_file: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    sla: Mapping[str, int] = field(default_factory=dict)


def parse_target(
    raw: str, families: Families, system: str = "adhoc", from_command_line: bool = False
) -> Target:
    """Validate one target URI through the family that owns its scheme."""
    text = raw.strip()
    if not text or any(ord(ch) < 32 or ch.isspace() for ch in text):
        raise TargetError(
            f"{raw!r}: a target URI cannot be empty or contain spaces or control characters"
        )
    if "://" not in text:
        raise TargetError(f"{raw!r}: not a URI; write scheme://host, e.g. tls://{text}")
    try:
        split = urlsplit(text)
    except ValueError as exc:
        raise TargetError(f"{raw!r}: {exc}") from None
    scheme = split.scheme.lower()
    family = families.by_scheme.get(scheme)
    if family is None:
        known = ", ".join(sorted(families.by_scheme)) or "none loaded"
        raise TargetError(f"{raw!r}: unknown scheme {scheme!r} (known: {known})")
    target = family.parse(split, text)
    return replace(target, system=system, from_command_line=from_command_line)


def load_inventory(path: Path, families: Families) -> Inventory:
    """Read and validate an inventory file (targets included); raise InventoryError."""
    doc = load_yaml(path, InventoryError)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise InventoryError("an inventory must be a mapping", source=doc.source, line=1)
    _refuse_executor(data, doc)
    options = {name: data.pop(name) for name in list(data) if name in families.by_name}
    try:
        model = InventoryModel.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, doc) from None
    for name, block in options.items():
        _validate_family_options(families, name, block, doc)
    return _inventory(model, doc, families, path, options)


def _refuse_executor(data: Mapping[str, Any], doc: YamlDocument) -> None:
    """An inventory cannot say where checks run: the executor receives every target and
    its settings, and its workers can run code on the scanning host, so only the person
    running the scan chooses it (``--executor``), never a file that may come from elsewhere."""
    if "executor" in data:
        raise InventoryError(
            "executor: an inventory cannot choose where checks run; "
            "give --executor on the command line",
            source=doc.source,
            line=doc.line_of(["executor"]),
        )


def _validate_family_options(families: Families, name: str, block: Any, doc: YamlDocument) -> None:
    """A family's own settings block is checked by the family, at load time (exit 2)."""
    validate = families.by_name[name].validate_options
    if validate is None:
        return
    try:
        validate(block)
    except (ValueError, TypeError, InputError) as exc:
        detail = exc.detail if isinstance(exc, InputError) else str(exc)
        raise InventoryError(
            f"{name}: {detail}", source=doc.source, line=doc.line_of([name])
        ) from None


def _validation_error(exc: ValidationError, doc: YamlDocument) -> InventoryError:
    first = exc.errors()[0]
    loc: list[str | int] = [p if isinstance(p, int) else str(p) for p in first["loc"]]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = f"unknown field {loc[-1]!r}"
    elif first["type"] == "missing":
        message = "required field is missing"
    return InventoryError(
        f"{format_path(loc)}: {message}", source=doc.source, line=doc.line_of(loc)
    )


def _inventory(
    model: InventoryModel,
    doc: YamlDocument,
    families: Families,
    path: Path,
    options: Mapping[str, Any],
) -> Inventory:
    """Build the inventory; top-level blocks named after a family are its settings."""
    systems, targets, seen_names = [], [], set()
    seen_targets: set[str] = set()
    for index, system in enumerate(model.systems):
        if system.name in seen_names:
            raise InventoryError(
                f"systems[{index}].name: duplicate system {system.name!r}",
                source=doc.source,
                line=doc.line_of(["systems", index, "name"]),
            )
        seen_names.add(system.name)
        systems.append(
            SystemInfo(system.name, system.owner, system.criticality, system.description)
        )
        for t_index, raw in enumerate(system.targets):
            where: list[str | int] = ["systems", index, "targets", t_index]
            try:
                target = parse_target(raw, families, system.name)
            except TargetError as exc:
                raise InventoryError(
                    f"{format_path(where)}: {exc.detail}",
                    source=doc.source,
                    line=doc.line_of(where),
                ) from None
            if target.uri not in seen_targets:
                seen_targets.add(target.uri)
                targets.append(target)
    ca_file = _ca_file(model.trust.ca_file, path, doc)
    scope = Scope(
        tuple(model.scope.networks), tuple(model.scope.domains), tuple(model.scope.aws_accounts)
    )
    return Inventory(
        doc.source,
        scope,
        tuple(systems),
        tuple(targets),
        tuple(model.policies),
        model.params,
        ca_file,
        options,
        {str(k): v for k, v in model.sla.items()},
    )


def _ca_file(value: str | None, path: Path, doc: YamlDocument) -> str | None:
    """Resolve ``trust.ca_file`` relative to the inventory file; it must exist."""
    if value is None:
        return None
    ca = Path(value)
    if not ca.is_absolute():
        ca = path.parent / ca
    if not ca.is_file():
        raise InventoryError(
            f"trust.ca_file: {value!r} does not exist",
            source=doc.source,
            line=doc.line_of(["trust", "ca_file"]),
        )
    return str(ca)


# --- the scope guard -----------------------------------------------------------------


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
        reaches = [_reaches(t, families, self.scope, options or {}) for t in targets]
        names = {t.host for t, r in zip(targets, reaches, strict=True) if r is None}
        names |= {_url_host(reach.url) for found in reaches for reach in found or ()}
        lookups = sorted(n for n in names if _is_name(n) and "{" not in n)
        resolved = resolve_all(lookups, self.resolver_timeout)
        admitted = []
        for target, found in zip(targets, reaches, strict=True):
            if found is None:
                admitted.append(self._admit_one(target, resolved.get(target.host, ())))
                continue
            for reach in found:
                self._admit_reach(target, reach, resolved)
            admitted.append(target)
        return tuple(admitted)

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


def _is_name(host: str) -> bool:
    if "/" in host:
        return False
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


def resolve_all(names: Sequence[str], timeout: float) -> dict[str, tuple[str, ...]]:
    """Resolve names concurrently; a name that fails or times out maps to ().

    Each lookup runs in a daemon thread of its own: ``getaddrinfo`` cannot be
    cancelled, and a resolver that never answers must cost ``timeout`` once, not hold
    the process at exit (a pool's workers are joined then) for the system's own
    resolver timeout per name.
    """
    futures = {name: resolve_in_background(name) for name in names}
    deadline = time.monotonic() + timeout
    result: dict[str, tuple[str, ...]] = {}
    for name, future in futures.items():
        try:
            result[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except (FutureTimeout, OSError, UnicodeError):
            result[name] = ()
    return result


def resolve_in_background(name: str) -> Future[tuple[str, ...]]:
    """Resolve ``name`` in a daemon thread (see :func:`resolve_all` for why)."""
    future: Future[tuple[str, ...]] = Future()

    def run() -> None:
        try:
            future.set_result(_resolve(name))
        except Exception as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="resolve", daemon=True).start()
    return future


def _resolve(name: str) -> tuple[str, ...]:
    infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%")[0]
        if address not in seen:
            seen.append(address)
    return tuple(seen)
