"""Turn command-line options and an inventory into a validated :class:`ScanPlan`.

Everything that can be wrong with the input is found here, before anything is sent:
bad URIs, unknown policies, policies that do not validate, parameters that do not
exist, targets outside the scope. Each becomes a typed error with one clear line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit import __version__
from audit.engine import DEFAULT_CONCURRENCY, ScanPlan
from audit.errors import OptionError, PolicyError
from audit.models import SystemInfo, Target
from audit.plugins import CheckContext, Scope
from audit.policy import FactCatalogue, Policy, check_unique_ids, load_policy, with_params
from audit.registry import Families, builtin_policies
from audit.scope import ScopeGuard
from audit.uri import parse_target

if TYPE_CHECKING:  # the inventory's pydantic models load only when one is given
    from audit.inventory import Inventory


@dataclass(frozen=True)
class ScanRequest:
    """What the user asked for, before validation."""

    targets: Sequence[str] = ()
    inventory: str | None = None
    policies: Sequence[str] = ()
    ca_file: str | None = None
    timeout: float = 30.0
    concurrency: int = DEFAULT_CONCURRENCY
    family_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Family settings given on the command line (``--resolver`` is ``{"dns": {"resolvers":
    [...]}}``); each key replaces the inventory's, and the family validates the result."""


def resolve_policy(name: str, known_types: Iterable[str] | FactCatalogue) -> Policy:
    """A built-in pack by name (through the compiled-policy cache), or a policy file by path.

    Only built-in packs are cached: they are loaded unchanged by every scan, while a file
    named by path is usually one being written, and is validated afresh each time.
    """
    looks_like_path = name.endswith((".yaml", ".yml")) or os.sep in name or "/" in name
    if looks_like_path:
        return load_policy(Path(name), known_types)
    packs = builtin_policies()
    if name not in packs:
        raise PolicyError(
            f"unknown policy {name!r} (built-in: {', '.join(sorted(packs))}; "
            "or give a path to a .yaml file)"
        )
    return load_policy(packs[name], known_types, cached=True)


def load_all_builtin(known_types: Iterable[str] | FactCatalogue) -> list[Policy]:
    """Every built-in pack, validated (or compiled earlier from the same bytes)."""
    known = known_types if isinstance(known_types, Mapping) else frozenset(known_types)
    return [load_policy(path, known, cached=True) for path in builtin_policies().values()]


def select_policies(
    names: Sequence[str],
    inventory: Inventory | None,
    scanned_types: frozenset[str],
    known_types: FactCatalogue,
) -> list[Policy]:
    """``-p`` if given, else the inventory's, else every pack matching scanned types."""
    chosen = list(names) or list(inventory.policies if inventory else ())
    if chosen:
        policies = [resolve_policy(name, known_types) for name in dict.fromkeys(chosen)]
    else:
        policies = [p for p in load_all_builtin(known_types) if p.resource_types() & scanned_types]
    check_unique_ids(policies)
    params = inventory.params if inventory else {}
    source = inventory.source if inventory else None
    return [with_params(p, params.get(p.name, {}), source) for p in policies]


def build_plan(
    request: ScanRequest, families: Families, warn: Callable[[str], None] | None = None
) -> ScanPlan:
    """Validate everything and return the plan; raises typed errors (exit 2).

    ``warn`` hears what the operator should know even if the scan is then refused (a
    deprecated inventory key), as soon as the inventory is read.
    """
    if request.timeout <= 0:
        raise OptionError("--timeout must be a positive number of seconds")
    if request.concurrency < 1:
        raise OptionError("--concurrency must be at least 1")
    inventory = _load_inventory(request.inventory, families)
    if inventory is not None and warn is not None:
        for warning in inventory.warnings:
            warn(warning)
    targets = _targets(request, families, inventory)
    if not targets:
        raise OptionError("nothing to scan: give targets or an inventory with targets")
    scope = inventory.scope if inventory else Scope()
    options = _options(request, inventory, families)
    admitted = ScopeGuard(scope).admit(targets, families, options)
    scanned = frozenset(
        t for target in admitted for t in families.by_scheme[target.scheme].resource_type_names()
    )
    policies = select_policies(request.policies, inventory, scanned, families.fact_catalogue())
    if not policies:
        raise PolicyError("no policy applies to these targets; name one with -p")
    ctx = CheckContext(
        timeout=request.timeout,
        ca_file=_ca_file(request, inventory),
        scope=scope,
        options=options,
        is_root=_is_root(),
    )
    return ScanPlan(
        targets=admitted,
        policies=tuple(policies),
        context=ctx,
        systems=_systems(inventory, admitted),
        inventory=_inventory_name(inventory),
        scope_declared=scope.is_declared,
        concurrency=request.concurrency,
        tool_version=__version__,
    )


def _load_inventory(path: str | None, families: Families) -> Inventory | None:
    if not path:
        return None
    from audit.inventory import load_inventory

    return load_inventory(Path(path), families)


def _targets(request: ScanRequest, families: Families, inventory: Inventory | None) -> list[Target]:
    targets = list(inventory.targets) if inventory else []
    seen = {t.uri for t in targets}
    for raw in request.targets:
        target = parse_target(raw, families, "adhoc", from_command_line=True)
        if target.uri not in seen:
            seen.add(target.uri)
            targets.append(target)
    return targets


def _ca_file(request: ScanRequest, inventory: Inventory | None) -> str | None:
    if request.ca_file is not None:
        if not Path(request.ca_file).is_file():
            raise OptionError(f"--ca-file {request.ca_file}: no such file")
        return str(Path(request.ca_file).resolve())
    return inventory.ca_file if inventory else None


def _options(
    request: ScanRequest, inventory: Inventory | None, families: Families
) -> Mapping[str, Any]:
    """The inventory's family blocks, with the command line's keys over them; a block the
    command line changed is checked again by its family (a bad value: exit 2)."""
    options = dict(inventory.options) if inventory else {}
    for name, given in request.family_options.items():
        if not given:
            continue
        block = options.get(name, {})
        merged = {**(block if isinstance(block, Mapping) else {}), **given}
        family = families.by_name.get(name)
        if family is not None and family.validate_options is not None:
            try:
                family.validate_options(merged)
            except (ValueError, TypeError) as exc:
                raise OptionError(f"{name} options: {exc}") from None
        options[name] = merged
    return options


def _systems(inventory: Inventory | None, targets: Sequence[Target]) -> tuple[SystemInfo, ...]:
    systems = list(inventory.systems) if inventory else []
    if any(t.system == "adhoc" for t in targets):
        systems.append(SystemInfo("adhoc", "", "medium", "targets named on the command line"))
    return tuple(systems)


def _inventory_name(inventory: Inventory | None) -> str | None:
    return inventory.source if inventory else None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
