"""The embedded demo lab: a small, flawed estate on loopback, and the demo run over it.

``rempart demo`` must show the whole product on a fresh machine without credentials,
root or network: this module starts real servers on 127.0.0.1 (TLS endpoints built from
certificates made with ``cryptography``, ``openssl s_server`` for legacy protocols, an
SMTP server with STARTTLS, exposed services nmap recognises, an AWS account served by
moto), writes an inventory with two systems and a declared scope, scans it, applies a
fix and an acceptance, scans again, and writes the reports. Everything it starts is
stopped on exit, Ctrl-C included. The test suite reuses the same lab.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

GOOD_HSTS = "max-age=63072000; includeSubDomains"
DEMO_POLICIES = [
    "anssi-tls",
    "certificates",
    "mozilla-intermediate",
    "web-tls",
    "exposure-baseline",
    "aws-baseline",
    "cis-aws-foundations",
]
"""One Mozilla profile only: modern and intermediate give contradictory advice (modern
refuses the TLS 1.2 suites intermediate asks for), and a public body's estate serves
clients that need intermediate."""
SCOPE_NETWORKS = ["127.0.0.0/8"]


@dataclass
class DemoLab:
    """What the lab started: targets by system, the CA to trust, notes for the reader."""

    directory: Path
    ca_file: str = ""
    systems: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fixes: list[Callable[[], None]] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    def add(self, system: str, target: str) -> None:
        """Put a target under a system of the inventory."""
        self.systems.setdefault(system, []).append(target)

    def write_inventory(self, path: Path) -> Path:
        """The demo inventory: two systems with owners, a declared scope, parameters."""
        owners = {
            PORTAL: ("DSI — pôle web", "high", "Démarches en ligne des usagers"),
            BACKOFFICE: (
                "Bureau du cloud et de la messagerie",
                "medium",
                "Messagerie et comptes cloud de l'administration",
            ),
        }
        inventory = {
            "scope": {
                "networks": SCOPE_NETWORKS,
                "domains": ["localhost"],
                "aws": {"accounts": ["123456789012"]},
            },
            "systems": [
                {
                    "name": name,
                    "owner": owners[name][0],
                    "criticality": owners[name][1],
                    "description": owners[name][2],
                    "targets": targets,
                }
                for name, targets in self.systems.items()
            ],
            "policies": DEMO_POLICIES,
            "params": {"exposure-baseline": {"allowed_ports": [443]}},
            "trust": {"ca_file": self.ca_file},
        }
        path.write_text(yaml.safe_dump(inventory, allow_unicode=True, sort_keys=False))
        return path

    def apply_fixes(self) -> None:
        """Remediate part of the estate between the two scans."""
        for fix in self.fixes:
            fix()


PORTAL = "Portail usagers"
BACKOFFICE = "Messagerie et cloud"


@contextmanager
def running_lab(directory: Path) -> Iterator[DemoLab]:
    """Start every part of the lab; stop all of it when the block ends."""
    lab = DemoLab(directory)
    with ExitStack() as stack:
        _tls_part(lab, stack)
        _ports_part(lab, stack)
        _aws_part(lab, stack)
        yield lab


def _tls_part(lab: DemoLab, stack: ExitStack) -> None:
    from checks.tls.lab import (
        OpenSslServer,
        Pki,
        PythonTlsServer,
        SmtpStartTlsServer,
        server_context,
    )

    pki = Pki(lab.directory / "pki", name="Rempart Démo")
    lab.ca_file = pki.ca_file
    good = pki.issue(("localhost",), days_valid=(-10, 80))
    servers = [
        PythonTlsServer(server_context(good), hsts=GOOD_HSTS),
        PythonTlsServer(server_context(pki.issue(("localhost",), days_valid=(-400, -3)))),
        PythonTlsServer(server_context(pki.issue(("portail.invalid",), self_signed=True))),
    ]
    for server in servers:
        stack.enter_context(server)
        lab.add(PORTAL, f"tls://localhost:{server.port}")
    if shutil.which("openssl"):
        legacy = pki.issue(("localhost",), key=_rsa_key())
        old = stack.enter_context(
            OpenSslServer(legacy, ["-min_protocol", "TLSv1", "-cipher", "ALL:@SECLEVEL=0"])
        )
        lab.add(PORTAL, f"tls://localhost:{old.port}")
    else:
        lab.notes.append("openssl is not installed: the legacy TLS endpoint was skipped")
    smtp = stack.enter_context(SmtpStartTlsServer(server_context(good)))
    lab.add(BACKOFFICE, f"smtp://localhost:{smtp.port}")


def _rsa_key() -> Any:
    from checks.tls.lab import rsa_key

    return rsa_key(2048)


def _ports_part(lab: DemoLab, stack: ExitStack) -> None:
    from checks.ports.lab import exposure_lab

    if shutil.which("nmap") is None:
        lab.notes.append(
            "nmap is not installed: the exposure part was skipped (apt-get install nmap)"
        )
        return
    ports = stack.enter_context(exposure_lab("127.0.0.1", ("http", "ssh", "mysql", "redis")))
    lab.add(PORTAL, ports.uri(sv="1"))


def _aws_part(lab: DemoLab, stack: ExitStack) -> None:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        lab.notes.append(
            "moto is not installed: the cloud part was skipped (pip install 'rempart[demo]')"
        )
        return
    from checks.aws.lab import Lab

    aws = stack.enter_context(Lab())
    aws.seed()
    lab.environment.update(aws.environment())
    lab.add(BACKOFFICE, aws.target())
    lab.fixes.append(aws.fix)


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
            _accept_one(db, first)
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


def _accept_one(db: Path, scan_id: int) -> None:
    """Accept one failing finding, as a committee would, so the report shows it."""
    from audit.store import Store

    store = Store(db)
    try:
        failing = [
            f for f in store.findings(scan_id, status="fail") if f.resource_type == "net.service"
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
