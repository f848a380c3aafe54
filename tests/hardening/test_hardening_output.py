"""Where reports go and what they contain: hostile paths, modes, XML and the terminal.

The attacks: ``-o`` replaced a device node or a planted link to ``/proc/self/fd/1`` with
a regular file (as root, ``-o /dev/null`` would replace the real one); reports were
always 0644 whatever the umask; a certificate field holding U+FFFE made the JUnit XML
unreadable; an inventory's system name drove the terminal through the scan summary.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from checks.tls import lab
from tests.hardening.conftest import REPO, rempart

POLICY = """\
policy: issuer-name
title: Issuer name
rules:
  - id: HARD-OUT-001
    title: The issuer is the expected one
    resource: tls.endpoint
    expect: {key: certificate.issuer, op: eq, value: CN=Expected CA}
    severity: low
    controls: {iso27001: A.8.24}
    remediation: None.
"""


def _scan_closed_port(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    run = rempart(
        "scan", f"tls://127.0.0.1:{lab.closed_port()}", "-p", "anssi-tls",
        "--db", str(tmp_path / "r.db"), "--timeout", "3", *args,
    )  # fmt: skip
    return run.code, run.out, run.err


@pytest.mark.parametrize("kind", ["symlink-to-stdout", "symlink-to-devnull", "fifo", "directory"])
def test_an_existing_path_that_is_not_a_regular_file_is_not_replaced(
    tmp_path: Path, kind: str
) -> None:
    # Given a report path that already is a link, a FIFO or a directory
    path = tmp_path / "report.json"
    if kind == "symlink-to-stdout":
        path.symlink_to("/proc/self/fd/1")
    elif kind == "symlink-to-devnull":
        path.symlink_to(os.devnull)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    before = os.lstat(path)
    # When a scan is asked to write there
    code, _, err = _scan_closed_port(tmp_path, "-o", str(path))
    # Then it is refused before the scan, and the path is what it was
    assert code == 2, err
    assert "exists and is not a regular file" in err
    after = os.lstat(path)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert not (tmp_path / "r.db").exists()  # refused before anything was scanned


def test_a_report_command_does_not_replace_a_device_either(tmp_path: Path) -> None:
    code, _, err = _scan_closed_port(tmp_path)
    assert code == 0, err
    link = tmp_path / "report.html"
    link.symlink_to(os.devnull)
    run = rempart("report", "--db", str(tmp_path / "r.db"), "-o", str(link))
    assert run.code == 2, run.err
    assert link.is_symlink()


def test_reports_follow_the_umask(tmp_path: Path) -> None:
    # Given an operator whose umask keeps reports private
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "audit", "scan", f"tls://127.0.0.1:{lab.closed_port()}",
         "-p", "anssi-tls", "--db", str(tmp_path / "r.db"), "--timeout", "3", "-o", str(out)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
        preexec_fn=lambda: os.umask(0o077),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # Then the report is readable by its owner only
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_replaced_report_keeps_its_previous_mode(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("{}")
    out.chmod(0o640)
    code, _, err = _scan_closed_port(tmp_path, "-o", str(out))
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert json.loads(out.read_text())["schema"] == 1


def test_dash_writes_the_report_to_standard_output(tmp_path: Path) -> None:
    code, out, err = _scan_closed_port(tmp_path, "-o", "-", "--format", "json")
    assert code == 0, err
    document = json.loads(out)  # nothing else on stdout: the summary is on stderr
    assert document["schema"] == 1
    assert "report written: standard output" in err
    assert not (REPO / "-").exists()


def test_dash_without_a_format_is_refused(tmp_path: Path) -> None:
    code, _, err = _scan_closed_port(tmp_path, "-o", "-")
    assert code == 2
    assert "--format" in err


def test_junit_stays_well_formed_with_characters_xml_forbids(tmp_path: Path) -> None:
    # Given a server whose CA name holds U+FFFE and U+FFFF
    pki = lab.Pki(tmp_path / "pki", name="Lab\ufffe\uffff")
    issued = pki.issue(["localhost"])
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    out = tmp_path / "junit.xml"
    with lab.PythonTlsServer(lab.server_context(issued)) as server:
        run = rempart(
            "scan", f"tls://127.0.0.1:{server.port}", "-p", str(policy), "--ca-file",
            pki.ca_file, "--db", str(tmp_path / "r.db"), "-o", str(out), "-q",
        )  # fmt: skip
    assert run.code == 0, run.err
    # Then the JUnit report parses, and the characters are shown as escapes
    root = ET.fromstring(out.read_bytes())
    failure = root.find(".//failure")
    assert failure is not None and failure.text is not None
    assert "Lab\\ufffe\\uffff" in failure.text


def test_the_scan_summary_neither_renders_markup_nor_passes_escapes(tmp_path: Path) -> None:
    # Given an inventory whose system name carries rich markup and terminal escapes
    inventory = tmp_path / "inv.yaml"
    name = "[bold red]PWNED[/bold red] \\e]0;owned\\a\\e[2J"
    inventory.write_text(
        f'systems:\n  - name: "{name}"\n'
        f"    targets: [tls://127.0.0.1:{lab.closed_port()}]\npolicies: [anssi-tls]\n"
    )
    run = rempart("scan", "-i", str(inventory), "--db", str(tmp_path / "r.db"), "--timeout", "3")
    assert run.code == 0, run.err
    # Then the summary shows the name as text, with the escapes visible, never sent raw
    assert "\x1b" not in run.err
    assert "\x07" not in run.err
    assert "[bold red]PWNED" in run.err
    assert "\\x1b]0;owned" in run.err
