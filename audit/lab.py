"""The embedded demo lab: a small, flawed estate on loopback, and the demo run over it.

``rempart demo`` must show the whole product on a fresh machine without credentials,
root or network. It knows no family: every registered family with a ``demo`` hook
starts its part of the lab on loopback (see :mod:`audit.labkit.demo`) and says what to
scan, with which policies. The demo writes one inventory with two systems and a declared
scope, scans it, applies the parts' fixes and an acceptance, scans again, and writes the
reports. Everything it starts is stopped on exit, Ctrl-C included. The test suite reuses
the same lab.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from audit.labkit.demo import SYSTEMS, DemoContext, DemoPart


@dataclass
class DemoLab:
    """What the lab started: the families' parts, merged for one inventory."""

    directory: Path
    parts: list[DemoPart] = field(default_factory=list)

    @property
    def systems(self) -> dict[str, list[str]]:
        """Targets by system, in the order the parts gave them."""
        systems: dict[str, list[str]] = {}
        for part in self.parts:
            for system, target in part.targets:
                systems.setdefault(system, []).append(target)
        return systems

    @property
    def notes(self) -> list[str]:
        """What was skipped and why."""
        return [note for part in self.parts for note in part.notes]

    @property
    def environment(self) -> dict[str, str]:
        """What the scans need in their environment (fake credentials)."""
        return {k: v for part in self.parts for k, v in part.environment.items()}

    @property
    def ca_file(self) -> str:
        """The lab CA the scans trust: a part's file, or every part's in one bundle (each
        family's lab has its own PKI)."""
        files = _unique(part.ca_file for part in self.parts if part.ca_file)
        if len(files) <= 1:
            return files[0] if files else ""
        bundle = self.directory / "lab-ca.pem"
        bundle.write_bytes(b"".join(Path(name).read_bytes() for name in files))
        return str(bundle)

    @property
    def accept_types(self) -> tuple[str, ...]:
        """Resource types whose failing findings the demo prefers to accept."""
        return tuple(part.accept for part in self.parts if part.accept)

    def write_inventory(self, path: Path) -> Path:
        """The demo inventory: two systems with owners, a declared scope, parameters."""
        inventory: dict[str, Any] = {
            "scope": self._scope(),
            "systems": [_system(name, targets) for name, targets in self.systems.items()],
            "policies": _unique(p for part in self.parts for p in part.policies),
            "params": {k: dict(v) for part in self.parts for k, v in part.params.items()},
            "trust": {"ca_file": self.ca_file},
        }
        for part in self.parts:
            for family, block in part.options.items():
                inventory.setdefault(family, {}).update(block)
        path.write_text(yaml.safe_dump(inventory, allow_unicode=True, sort_keys=False))
        return path

    def _scope(self) -> dict[str, Any]:
        scope: dict[str, Any] = {
            "networks": _unique(n for part in self.parts for n in part.networks),
            "domains": _unique(d for part in self.parts for d in part.domains),
        }
        for part in self.parts:
            for family, block in part.scope.items():
                scope[family] = {key: list(values) for key, values in block.items()}
        return scope

    def apply_fixes(self) -> None:
        """Remediate part of the estate between the two scans."""
        for part in self.parts:
            if part.fix is not None:
                part.fix()


def _system(name: str, targets: list[str]) -> dict[str, Any]:
    owner, criticality, description = SYSTEMS[name]
    return {
        "name": name,
        "owner": owner,
        "criticality": criticality,
        "description": description,
        "targets": targets,
    }


def _unique(values: Iterator[str] | Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


@contextmanager
def running_lab(directory: Path) -> Iterator[DemoLab]:
    """Start every registered family's part of the lab; stop all of it when the block ends."""
    from audit.registry import load_families

    lab = DemoLab(directory)
    with ExitStack() as stack:
        for name, family in load_families().by_name.items():
            if family.demo is not None:
                lab.parts.append(family.demo(DemoContext(directory / name, stack)))
        lab.parts.sort(key=lambda part: part.order)
        yield lab


# --- the demo run ----------------------------------------------------------------------


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its reports, and what it found."""

    directory: Path
    reports: tuple[Path, ...]
    scans: tuple[int, ...]
    notes: tuple[str, ...]


def run_demo(
    out: Path, *, keep: bool = False, quiet: bool = False, echo: Callable[[str], None] = print
) -> DemoResult:
    """Start the lab, scan twice with a fix and an acceptance between, write the reports."""
    out.mkdir(parents=True, exist_ok=True)
    db = out / "rempart.db"
    for stale in (db, out / "rempart.db-wal", out / "rempart.db-shm"):
        stale.unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rempart-lab-"))
    try:
        with running_lab(work) as lab, _environment(lab.environment):
            inventory = lab.write_inventory(out / "inventory.yaml")
            echo(f"lab started: {sum(len(t) for t in lab.systems.values())} targets on loopback")
            first = _scan(inventory, db, quiet)
            _accept_one(db, first, lab.accept_types)
            lab.apply_fixes()
            echo("fix applied; an acceptance recorded; scanning again")
            second = _scan(inventory, db, quiet)
        reports = _write_reports(db, second, out)
        return DemoResult(out, reports, (first, second), tuple(lab.notes))
    finally:
        if keep:
            echo(f"lab files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set the lab's fake cloud credentials for the scan, and restore the environment."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _scan(inventory: Path, db: Path, quiet: bool) -> int:
    """One scan of the lab. The in-process moto server prints a line for every service it
    does not emulate (Access Analyzer) on stdout; the scan itself reports those calls as
    ``error`` findings, so that chatter is kept off the reader's terminal."""
    with contextlib.redirect_stdout(io.StringIO()):
        return _scan_quietly(inventory, db, quiet)


def _scan_quietly(inventory: Path, db: Path, quiet: bool) -> int:
    from audit.cli.progress import run_with_ui
    from audit.planning import ScanRequest, build_plan
    from audit.registry import load_families
    from audit.store import Store

    families = load_families()
    plan = build_plan(ScanRequest(inventory=str(inventory), timeout=30.0), families)
    store = Store(db)
    try:
        return run_with_ui(plan, families, store, quiet=quiet).id
    finally:
        store.close()


def _accept_one(db: Path, scan_id: int, preferred: tuple[str, ...]) -> None:
    """Accept one failing finding, as a committee would, so the report shows it."""
    from audit.store import Store

    store = Store(db)
    try:
        failing = [
            f for f in store.findings(scan_id, status="fail") if f.resource_type in preferred
        ] or store.findings(scan_id, status="fail")
        if not failing:
            return
        target = failing[0]
        store.accept(
            fingerprint_=target.fingerprint,
            rule_id=target.rule_id,
            resource_key=target.resource_key,
            owner="Mme Durand (RSSI)",
            reason="Service d'administration maintenu jusqu'à la migration",
            compensating="Accès filtré par le bastion, journalisation renforcée",
            decided_by="Commission d'homologation du 12 novembre",
            until=(datetime.now(UTC) + timedelta(days=45)).date(),
        )
    finally:
        store.close()


def _write_reports(db: Path, scan_id: int, out: Path) -> tuple[Path, ...]:
    from audit import __version__
    from audit.errors import DependencyError
    from audit.reporting import RenderOptions
    from audit.store import Store
    from audit.writing import write_report

    store = Store(db)
    try:
        data = store.load_report(scan_id, tool_version=__version__)
    finally:
        store.close()
    written = []
    for name, lang in (
        ("report-fr.html", "fr"),
        ("report-en.html", "en"),
        ("report.pdf", "fr"),
        ("findings.sarif", "fr"),
        ("findings.json", "fr"),
    ):
        try:
            write_report(data, str(out / name), None, RenderOptions(lang=lang))
        except DependencyError:
            continue
        written.append(out / name)
    return tuple(written)
