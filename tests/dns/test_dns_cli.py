"""End to end through the real command: --resolver, --dnssec-anchors and the inventory.

The target is ``dns://localhost``, a domain the scope declares: the guard judges a
``dns://`` target by its name, with no lookup of its own, and every question goes to the
lab's resolver, so none leaves the machine. The lab serves a signed ``localhost.`` zone
under its root.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.dns.lab import DnsLab

from .conftest import needs_lab

pytestmark = needs_lab


@pytest.fixture(scope="module")
def localhost_lab() -> Iterator[DnsLab]:
    with DnsLab(records={"localhost": ['@ IN CAA 0 issue "letsencrypt.org"']}) as lab:
        yield lab


def rempart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def inventory(tmp_path: Path, lab: DnsLab, trust: str = "") -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "scope:\n  networks: [127.0.0.0/8, '::1/128']\n  domains: [localhost]\n"
        f"dns:\n  nameserver_port: {lab.port}\n"
        f"{trust}"
        "systems:\n  - name: Zones\n    targets: ['dns://localhost']\n"
    )
    return path


def test_scan_with_resolver_and_anchors_on_the_command_line(
    localhost_lab: DnsLab, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    run = rempart(
        "scan",
        "-i",
        str(inventory(tmp_path, localhost_lab)),
        "-p",
        "dns-hygiene",
        "--resolver",
        f"127.0.0.1:{localhost_lab.port}",
        "--dnssec-anchors",
        str(localhost_lab.anchors_file),
        "--db",
        str(tmp_path / "r.db"),
        "-o",
        str(report),
        "--quiet",
    )
    assert run.returncode == 0, run.stderr
    findings = {f["rule_id"]: f["status"] for f in json.loads(report.read_text())["findings"]}
    assert findings["DNS-DNSSEC-001"] == "pass"
    assert findings["DNS-CAA-001"] == "pass" and findings["DNS-AXFR-001"] == "pass"


def test_the_inventory_names_the_anchors_and_resolvers(
    localhost_lab: DnsLab, tmp_path: Path
) -> None:
    trust = f"trust:\n  dnssec_anchors: {localhost_lab.anchors_file}\n"
    path = inventory(tmp_path, localhost_lab, trust)
    path.write_text(
        path.read_text().replace(
            "dns:\n", f"dns:\n  resolvers: ['127.0.0.1:{localhost_lab.port}']\n"
        )
    )
    report = tmp_path / "report.json"
    run = rempart(
        "scan",
        "-i",
        str(path),
        "-p",
        "dns-hygiene",
        "--db",
        str(tmp_path / "r.db"),
        "-o",
        str(report),
        "--quiet",
    )
    assert run.returncode == 0, run.stderr
    findings = {f["rule_id"]: f["status"] for f in json.loads(report.read_text())["findings"]}
    assert findings["DNS-DNSSEC-001"] == "pass"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--resolver", "ns.example.org"], "give an IP address, not a name"),
        (["--resolver", "127.0.0.1:99999"], "port must be 1-65535"),
        (["--dnssec-anchors", "/nonexistent/anchors.zone"], "cannot read DNSSEC anchors"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    localhost_lab: DnsLab, tmp_path: Path, args: list[str], said: str
) -> None:
    run = rempart(
        "scan",
        "-i",
        str(inventory(tmp_path, localhost_lab)),
        *args,
        "--db",
        str(tmp_path / "r.db"),
    )
    assert run.returncode == 2 and said in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.db").exists()


def test_a_bad_trust_anchors_file_in_the_inventory_names_its_line(
    localhost_lab: DnsLab, tmp_path: Path
) -> None:
    bad = tmp_path / "anchors.zone"
    bad.write_text("not a record\n")
    path = inventory(tmp_path, localhost_lab, f"trust:\n  dnssec_anchors: {bad.name}\n")
    run = rempart("scan", "-i", str(path), "--db", str(tmp_path / "r.db"))
    assert run.returncode == 2, run.stderr
    assert f"{path}:7: trust.dnssec_anchors:" in run.stderr  # its own line
