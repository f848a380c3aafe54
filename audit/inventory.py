"""Inventory files and target URIs.

The inventory says what to scan and what we are *allowed* to scan. Every target URI is
validated by its family before anything runs; the scope it declares is enforced by
:mod:`audit.scope` before a single packet leaves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.errors import InputError, InventoryError, InventoryErrors, TargetError
from audit.models import SystemInfo, Target
from audit.plugins import Scope
from audit.registry import Families
from audit.uri import parse_target as parse_target  # noqa: PLC0414 - re-exported
from audit.yamlfile import YamlDocument, format_path, load_yaml


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScopeModel(BaseModel):
    """The authorised perimeter: networks and domains, then one block per family.

    Keys other than ``networks`` and ``domains`` name a family's own perimeter
    (``aws: {accounts: [...]}``), which that family validates; ``aws_accounts`` is the
    older spelling of ``aws: {accounts}``, still read, with a deprecation warning.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    networks: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    aws_accounts: list[str] | None = None  # deprecated spelling of aws: {accounts}

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
    dnssec_anchors: str | None = None
    """DS or DNSKEY records (zone-file syntax) the dns family validates DNSSEC from."""


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
    warnings: tuple[str, ...] = ()


class Faults:
    """The faults of one inventory, gathered so that its author sees all of them at once
    (as ``policy validate`` does), then raised together by :meth:`raise_all`."""

    def __init__(self) -> None:
        self.items: list[InputError] = []

    @contextmanager
    def collect(self) -> Iterator[None]:
        """Record an InventoryError raised inside and carry on with the next check."""
        try:
            yield
        except InventoryErrors as exc:
            self.items.extend(exc.problems)
        except InventoryError as exc:
            self.items.append(exc)

    def raise_all(self) -> None:
        """Raise nothing, the one fault, or all of them as :class:`InventoryErrors`."""
        if len(self.items) == 1:
            raise self.items[0]
        if self.items:
            raise InventoryErrors(self.items)


def load_inventory(path: Path, families: Families) -> Inventory:
    """Read and validate an inventory file (targets included); raise InventoryError, or
    InventoryErrors naming every fault when there are several."""
    doc = load_yaml(path, InventoryError)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise InventoryError("an inventory must be a mapping", source=doc.source, line=1)
    faults = Faults()
    with faults.collect():
        _refuse_executor(data, doc)
    data.pop("executor", None)
    options = {name: data.pop(name) for name in list(data) if name in families.by_name}
    for name, block in options.items():
        with faults.collect():
            _validate_family_options(families, name, block, doc)
    try:
        model = InventoryModel.model_validate(data)
    except ValidationError as exc:
        faults.items.extend(_validation_errors(exc, doc))
        faults.raise_all()
        raise  # unreachable: a ValidationError carries at least one error
    with faults.collect():
        inventory = _inventory(model, doc, families, path, options)
    faults.raise_all()
    return inventory


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


def _validation_errors(exc: ValidationError, doc: YamlDocument) -> list[InventoryError]:
    """Each of pydantic's errors as one line naming its path and its line in the file."""
    return [_validation_error(error, doc) for error in exc.errors()]


def _validation_error(error: Any, doc: YamlDocument) -> InventoryError:
    loc: list[str | int] = [p if isinstance(p, int) else str(p) for p in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown field {loc[-1]!r}"
    elif error["type"] == "missing":
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
    """Build the inventory; top-level blocks named after a family are its settings.
    Every fault of systems, targets, trust and scope is gathered (InventoryErrors)."""
    faults = Faults()
    systems: list[SystemInfo] = []
    targets: list[Target] = []
    seen_names: set[str] = set()
    seen_targets: set[str] = set()
    for index, system in enumerate(model.systems):
        with faults.collect():
            _refuse_duplicate(system.name, index, seen_names, doc)
        seen_names.add(system.name)
        systems.append(
            SystemInfo(system.name, system.owner, system.criticality, system.description)
        )
        for t_index, raw in enumerate(system.targets):
            with faults.collect():
                target = _target(raw, ["systems", index, "targets", t_index], system, families, doc)
                if target.uri not in seen_targets:
                    seen_targets.add(target.uri)
                    targets.append(target)
    ca_file: str | None = None
    scope = Scope((), (), {})
    warnings: tuple[str, ...] = ()
    with faults.collect():
        ca_file = _ca_file(model.trust.ca_file, path, doc)
    with faults.collect():
        options = _dnssec_anchors(model.trust.dnssec_anchors, path, doc, families, options)
    with faults.collect():
        scope, warnings = _scope(model.scope, families, doc)
    faults.raise_all()
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
        warnings,
    )


def _refuse_duplicate(name: str, index: int, seen: set[str], doc: YamlDocument) -> None:
    if name in seen:
        raise InventoryError(
            f"systems[{index}].name: duplicate system {name!r}",
            source=doc.source,
            line=doc.line_of(["systems", index, "name"]),
        )


def _target(
    raw: str, where: list[str | int], system: SystemModel, families: Families, doc: YamlDocument
) -> Target:
    """One target of a system, its fault named by its place in the file."""
    try:
        return parse_target(raw, families, system.name)
    except TargetError as exc:
        raise InventoryError(
            f"{format_path(where)}: {exc.detail}", source=doc.source, line=doc.line_of(where)
        ) from None


def _scope(
    model: ScopeModel, families: Families, doc: YamlDocument
) -> tuple[Scope, tuple[str, ...]]:
    """The declared perimeter; each family block checked by its family."""
    raw = dict(model.model_extra or {})
    warnings: tuple[str, ...] = ()
    if model.aws_accounts is not None:
        line = doc.line_of(["scope", "aws_accounts"])
        if "aws" in raw:
            raise InventoryError(
                "scope.aws_accounts: give the accounts once, in scope.aws.accounts",
                source=doc.source,
                line=line,
            )
        raw["aws"] = {"accounts": model.aws_accounts}
        warnings = (
            f"{doc.source}:{line}: scope.aws_accounts is deprecated; "
            "write scope: {aws: {accounts: [...]}}",
        )
    faults = Faults()
    blocks = {}
    for name, block in raw.items():
        with faults.collect():
            blocks[name] = _scope_block(name, block, families, doc)
    faults.raise_all()
    return Scope(tuple(model.networks), tuple(model.domains), blocks), warnings


def _scope_block(
    name: str, block: Any, families: Families, doc: YamlDocument
) -> Mapping[str, tuple[str, ...]]:
    """A family's perimeter, validated by that family (exit 2, with file and line)."""
    family = families.by_name.get(name)
    where = doc.line_of(["scope", name])
    if family is None or family.validate_scope is None:
        known = sorted(f.name for f in families.by_name.values() if f.validate_scope)
        raise InventoryError(
            f"scope.{name}: unknown scope block (networks, domains"
            + "".join(f", {k}" for k in known)
            + ")",
            source=doc.source,
            line=where,
        )
    try:
        return family.validate_scope(block)
    except (ValueError, TypeError) as exc:
        raise InventoryError(f"scope.{name}: {exc}", source=doc.source, line=where) from None


def _dnssec_anchors(
    value: str | None,
    path: Path,
    doc: YamlDocument,
    families: Families,
    options: Mapping[str, Any],
) -> Mapping[str, Any]:
    """``trust.dnssec_anchors``, relative to the inventory file, becomes the dns family's
    ``dnssec_anchors`` setting (unless its own block names one), checked by the family."""
    if value is None or "dns" not in families.by_name:
        return options
    anchors = Path(value) if Path(value).is_absolute() else path.parent / value
    block = options.get("dns", {})
    merged = {"dnssec_anchors": str(anchors), **(block if isinstance(block, Mapping) else {})}
    try:
        _validate_family_options(families, "dns", merged, doc)
    except InventoryError as exc:
        raise InventoryError(
            f"trust.dnssec_anchors: {exc.detail}",
            source=doc.source,
            line=doc.line_of(["trust", "dnssec_anchors"]),
        ) from None
    return {**options, "dns": merged}


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
