"""The contract between the store and the renderers.

A renderer receives one :class:`ReportData` (everything a reader of one scan needs,
loaded from the store alone) and returns the bytes of the document; the CLI writes
them atomically (temporary file, then rename) so no partial report is ever left.
Renderers register through the ``rempart.reports`` entry-point group, as checks do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from audit.models import Acceptance, Finding, Resource, ScanSummary, SystemInfo


@dataclass(frozen=True)
class ReportData:
    """One scan, its history and its governance context, as read from the store."""

    scan: ScanSummary
    findings: tuple[Finding, ...]
    resources: tuple[Resource, ...]
    systems: tuple[SystemInfo, ...] = ()
    acceptances: tuple[Acceptance, ...] = ()
    history: tuple[ScanSummary, ...] = ()  # earlier scans, oldest first
    generated_at: str = ""
    tool_version: str = ""


@dataclass(frozen=True)
class RenderOptions:
    """Reader-facing choices: language and an optional title."""

    lang: str = "fr"
    title: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


RenderFn = Callable[[ReportData, RenderOptions], bytes]


@dataclass(frozen=True)
class Renderer:
    """A report format: its name, the file extensions that select it, its function."""

    name: str
    extensions: tuple[str, ...]
    description: str
    render: RenderFn
