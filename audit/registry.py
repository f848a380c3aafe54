"""Discover check families, policy packs and renderers.

Built-ins are plugins too: the families, packs and renderers that ship with Rempart are
listed in a tuple of defaults loaded first, and also registered through the same
entry-point groups a third party uses (``rempart.checks``, ``rempart.policies``,
``rempart.reports``). A name registered twice by different objects is refused. A
security tool must not quietly run every installed entry point, so an allow-list
(``--plugins`` / ``REMPART_PLUGINS``) restricts which families load at all: an entry
point that is not allowed is never imported.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from audit.errors import PluginError
from audit.plugins import SCOPE_KINDS, CheckFamily
from audit.reporting import Renderer

DEFAULT_FAMILIES = ("checks.ports:FAMILY", "checks.tls:FAMILY", "checks.aws:FAMILY")
DEFAULT_RENDERERS = (
    "reports.json:RENDERER",
    "reports.html:RENDERER",
    "reports.pdf:RENDERER",
    "reports.markdown:RENDERER",
    "reports.csv:RENDERER",
    "reports.sarif:RENDERER",
    "reports.junit:RENDERER",
    "reports.ocsf:RENDERER",
)


def allowed_plugins(option: str | None = None) -> frozenset[str] | None:
    """The allow-list from ``--plugins`` or ``REMPART_PLUGINS`` (None: everything)."""
    raw = option if option is not None else os.environ.get("REMPART_PLUGINS")
    if raw is None or not raw.strip():
        return None
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def _load_ref(ref: str) -> Any:
    """Import ``module:attribute``; a default whose module is absent is skipped."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    return getattr(module, attr, None)


def _register(found: dict[str, Any], name: str, obj: Any, origin: str) -> None:
    existing = found.get(name)
    if existing is not None and existing is not obj:
        raise PluginError(f"plugin name {name!r} is registered twice ({origin})")
    found[name] = obj


@dataclass(frozen=True)
class Families:
    """The loaded check families, by name and by URI scheme."""

    by_name: Mapping[str, CheckFamily]
    by_scheme: Mapping[str, CheckFamily]

    def resource_types(self) -> frozenset[str]:
        """Every resource type some loaded family documents."""
        return frozenset(t for f in self.by_name.values() for t in f.resource_type_names())

    def fact_catalogue(self) -> dict[str, frozenset[str]]:
        """Resource type → its documented fact names: what a policy's keys may read."""
        return {
            doc.name: frozenset(fact.name for fact in doc.facts)
            for family in self.by_name.values()
            for doc in family.resource_types
        }


def load_families(allow: frozenset[str] | None = None) -> Families:
    """Defaults first, then the ``rempart.checks`` entry points, filtered by ``allow``."""
    found: dict[str, CheckFamily] = {}
    for ref in DEFAULT_FAMILIES:
        name = ref.split(".")[1].split(":")[0]
        if allow is not None and name not in allow:
            continue
        family = _load_ref(ref)
        if family is not None:
            _register(found, family.name, _admissible(family, ref), ref)
    for ep in entry_points(group="rempart.checks"):
        if allow is not None and ep.name not in allow:
            continue
        family = _load_entry_point(ep)
        if family is not None:
            origin = f"entry point {ep.value}"
            _register(found, family.name, _admissible(family, origin), origin)
    return Families(found, _by_scheme(found))


def _admissible(family: CheckFamily, origin: str) -> CheckFamily:
    """The scope guard checks ``network`` and ``domain`` targets itself; an ``account``
    needs the family's ``admit`` hook.

    Refused here, so a family whose targets the guard could not check never loads.
    """
    if family.scope_kind not in SCOPE_KINDS:
        raise PluginError(
            f"family {family.name!r} ({origin}) has unknown scope kind {family.scope_kind!r} "
            f"(known: {', '.join(SCOPE_KINDS)}), so the scope guard could not check its targets"
        )
    if family.scope_kind == "account" and family.admit is None:
        raise PluginError(
            f"family {family.name!r} ({origin}) has scope kind {family.scope_kind!r} "
            "but no admit hook, so the scope guard could not check its targets"
        )
    return family


def _load_entry_point(ep: Any) -> Any:
    try:
        return ep.load()
    except ModuleNotFoundError:
        return None
    except Exception as exc:
        raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from None


def _by_scheme(families: Mapping[str, CheckFamily]) -> dict[str, CheckFamily]:
    schemes: dict[str, CheckFamily] = {}
    for family in families.values():
        for scheme in family.schemes:
            if scheme in schemes and schemes[scheme] is not family:
                raise PluginError(
                    f"URI scheme {scheme!r} is claimed by "
                    f"{schemes[scheme].name!r} and {family.name!r}"
                )
            schemes[scheme] = family
    return schemes


def policy_dirs() -> tuple[Path, ...]:
    """Directories holding policy packs: the built-in one, then entry points'."""
    from policies import BUILTIN_DIR

    dirs = [BUILTIN_DIR]
    for ep in entry_points(group="rempart.policies"):
        value = _load_entry_point(ep)
        if value is not None and Path(value) not in dirs:
            dirs.append(Path(value))
    return tuple(dirs)


def builtin_policies() -> dict[str, Path]:
    """Built-in pack name → file; a name shipped twice is refused."""
    packs: dict[str, Path] = {}
    for directory in policy_dirs():
        for path in sorted(directory.glob("*.yaml")):
            if path.stem in packs and packs[path.stem] != path:
                raise PluginError(
                    f"policy pack {path.stem!r} is shipped twice ({packs[path.stem]} and {path})"
                )
            packs[path.stem] = path
    return packs


@lru_cache(maxsize=1)
def load_renderers() -> Mapping[str, Renderer]:
    """Report formats by name: defaults first, then ``rempart.reports`` entry points."""
    found: dict[str, Renderer] = {}
    for ref in DEFAULT_RENDERERS:
        renderer = _load_ref(ref)
        if renderer is not None:
            _register(found, renderer.name, renderer, ref)
    for ep in entry_points(group="rempart.reports"):
        renderer = _load_entry_point(ep)
        if renderer is not None:
            _register(found, renderer.name, renderer, f"entry point {ep.value}")
    return found


def renderer_for(path: str, fmt: str | None, renderers: Mapping[str, Renderer]) -> Renderer:
    """Pick a renderer from ``--format`` or from the file extension."""
    from audit.errors import OptionError

    if fmt:
        if fmt not in renderers:
            raise OptionError(f"unknown format {fmt!r} (known: {', '.join(sorted(renderers))})")
        return renderers[fmt]
    lower = path.lower()
    matches = [r for r in renderers.values() for ext in r.extensions if lower.endswith(ext)]
    if not matches:
        known = ", ".join(sorted({e for r in renderers.values() for e in r.extensions}))
        raise OptionError(
            f"{path}: cannot tell the format from the extension (known: {known}); use --format"
        )
    return max(matches, key=lambda r: max(len(e) for e in r.extensions if lower.endswith(e)))


def names(items: Iterable[Any]) -> list[str]:
    """Sorted names of plugin objects (for messages)."""
    return sorted(getattr(i, "name", str(i)) for i in items)
