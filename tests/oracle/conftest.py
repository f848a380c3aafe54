"""Fixtures of the oracle layer: the independent tools, and each server observed once.

The layer runs with ``pytest -m oracle`` (never by default: it needs sslyze in its own
virtual environment, nginx and nmap). sslyze lives in ``.venv-oracle`` (``make
oracle-venv``), created here on first use when missing, because sslyze pins its own
cryptography and nassl and must not share Rempart's environment. ``REMPART_ORACLE_PYTHON``
names another interpreter that has sslyze.

Each TLS configuration is started once per session, observed by Rempart and by every
oracle while it runs, then stopped; the tests compare the recorded observations, so a
fact compared twice costs one scan.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from audit.models import Observation
from audit.plugins import CheckContext
from checks.tls import FAMILY, lab
from tests.oracle import oracles
from tests.oracle.servers import TlsConfig, issue, nginx_available, serve

REPO = Path(__file__).resolve().parents[2]
ORACLE_VENV = REPO / ".venv-oracle"
SCAN_TIMEOUT_S = 20.0
"""Generous: two cores are shared with the oracles and with whatever else CI runs."""


def _oracle_python() -> Path:
    named = os.environ.get("REMPART_ORACLE_PYTHON")
    return Path(named) if named else ORACLE_VENV / "bin" / "python"


def _has_sslyze(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import sslyze"], capture_output=True, check=False, timeout=60
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def sslyze_python() -> Path:
    """An interpreter with sslyze, made by ``make oracle-venv`` when there is none.

    A missing oracle fails the layer rather than skipping it: a differential test that
    silently compares nothing would pass in CI and prove nothing.
    """
    python = _oracle_python()
    if not _has_sslyze(python) and "REMPART_ORACLE_PYTHON" not in os.environ:
        made = subprocess.run(
            ["make", "-C", str(REPO), "oracle-venv"],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if made.returncode != 0:
            pytest.fail(f"make oracle-venv failed:\n{made.stdout[-2000:]}{made.stderr[-2000:]}")
    if not _has_sslyze(python):
        pytest.fail(f"sslyze is not importable by {python}")
    return python


def rempart_scan(uri: str, ca_file: str | None) -> Observation:
    """Parse and collect one target the way the engine does (in process)."""
    target = FAMILY.parse(urlsplit(uri), uri)
    return FAMILY.collect(target, CheckContext(timeout=SCAN_TIMEOUT_S, ca_file=ca_file))


@dataclass(frozen=True)
class Seen:
    """One configuration as Rempart and the oracles saw it, while it ran."""

    config: TlsConfig
    facts: dict[str, Any]
    """Rempart's ``tls.endpoint`` facts."""
    unknown: dict[str, Any]
    sslyze: oracles.SslyzeView
    python_protocols: dict[str, bool | None]
    python_trust: tuple[bool, str | None]
    python_complete: bool
    openssl_hostname: bool

    @property
    def certificate(self) -> dict[str, Any]:
        """Rempart's certificate facts (a failing test, not a KeyError, when absent)."""
        certificate = self.facts.get("certificate")
        assert certificate, f"Rempart saw no certificate: {self.unknown}"
        return dict(certificate)


class TlsLab:
    """The lab PKI and the observations made so far, one per configuration."""

    def __init__(self, directory: Path, python: Path) -> None:
        self.directory = directory
        self.python = python
        self.pki = lab.Pki(directory / "pki")
        self._seen: dict[str, Seen] = {}

    def seen(self, config: TlsConfig) -> Seen:
        """Observe ``config`` (once) and return what everyone saw."""
        if config.name not in self._seen:
            self._seen[config.name] = self._observe(config)
        return self._seen[config.name]

    def _observe(self, config: TlsConfig) -> Seen:
        if config.server == "nginx" and not nginx_available():
            pytest.skip("nginx is not installed (make sysdeps installs it)")
        workdir = self.directory / config.name
        workdir.mkdir()
        issued = issue(self.pki, config.leaf, workdir)
        with serve(config, issued) as port:
            observation = rempart_scan(config.rempart_uri(port), self.pki.ca_file)
            assert not observation.problems, observation.problems
            (resource,) = observation.resources
            view = oracles.sslyze_scan(
                self.python,
                port,
                config.sni,
                self.pki.ca_file,
                workdir,
                http=config.server != "openssl",
            )
            protocols = {
                version: oracles.python_accepts(port, config.sni, version)
                for version in oracles.PYTHON_VERSIONS
            }
            trust = oracles.python_trusts(port, config.sni, self.pki.ca_file)
            complete = oracles.python_chain_complete(
                port, config.sni, self.pki.ca_file, view.chain_pem
            )
        name = config.sni or lab.LOOPBACK
        return Seen(
            config=config,
            facts=dict(resource.facts),
            unknown=dict(resource.unknown),
            sslyze=view,
            python_protocols=protocols,
            python_trust=trust,
            python_complete=complete,
            openssl_hostname=oracles.openssl_hostname_match(view.chain_pem[0], name),
        )


@pytest.fixture(scope="session")
def tls_lab(tmp_path_factory: pytest.TempPathFactory, sslyze_python: Path) -> TlsLab:
    """One PKI for the session; configurations are observed lazily, each once."""
    return TlsLab(tmp_path_factory.mktemp("oracle-tls"), sslyze_python)
