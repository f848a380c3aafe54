"""What a family's ``demo`` hook receives and gives back for ``rempart demo``.

The demo knows no family: it asks every registered family with a ``demo`` hook for its
part (:class:`DemoPart`), passing a :class:`DemoContext` with a directory for the lab's
files and an exit stack for the servers it starts, then writes one inventory from the
parts, scans, applies the parts' fixes, and scans again. A part whose prerequisites are
missing (a program, an extra) still gives its policies, so the reports keep the same
sections, and says in a note what was skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PORTAL = "Portail usagers"
"""The demo's public-facing system (web endpoints, exposed services)."""
BACKOFFICE = "Messagerie et cloud"
"""The demo's internal system (mail, cloud account)."""
SYSTEMS: Mapping[str, tuple[str, str, str]] = {
    PORTAL: ("DSI — pôle web", "high", "Démarches en ligne des usagers"),
    BACKOFFICE: (
        "Bureau du cloud et de la messagerie",
        "medium",
        "Messagerie et comptes cloud de l'administration",
    ),
}
"""Owner, criticality and description of each system, as the inventory states them."""


@dataclass(frozen=True)
class DemoContext:
    """Where a family's demo part puts its files, and what stops its servers."""

    directory: Path
    """A private directory for this family (certificates, logs), removed after the demo."""
    stack: ExitStack
    """Everything entered on it is stopped when the demo ends, Ctrl-C included."""


@dataclass
class DemoPart:
    """One family's share of the demo: targets, policies, scope, and the fix it applies."""

    targets: list[tuple[str, str]] = field(default_factory=list)
    """(system, target URI) pairs, in the order the inventory lists them."""
    policies: tuple[str, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Policy parameters, by policy name."""
    networks: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    scope: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)
    """The family's own block of the inventory's ``scope:`` (``{"aws": {...}}``)."""
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Family settings blocks of the inventory (``{"dns": {"resolvers": [...]}}``)."""
    ca_file: str | None = None
    """The lab CA a scan must trust."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Variables the scans need (fake credentials), set only while they run."""
    fix: Callable[[], None] | None = None
    """Remediates part of the lab between the two scans."""
    accept: str | None = None
    """A resource type whose failing finding the demo accepts, as a committee would."""
    notes: list[str] = field(default_factory=list)
    """What was skipped and why, for the reader."""
    order: int = 100
    """Where the part's targets and policies come in the inventory (lower first), so it
    reads the same whatever order the families were registered in."""

    def add(self, system: str, target: str) -> None:
        """Put a target under a system of the inventory."""
        self.targets.append((system, target))
