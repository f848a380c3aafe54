"""End to end through the real command: rempart scan tls://... -p PACK -o report.json."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.tls import lab

PACKS = ["anssi-tls", "mozilla-intermediate", "mozilla-modern", "certificates", "web-tls"]


def rempart_scan(tmp_path: Path, target: str, *args: str) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "audit",
        "scan",
        target,
        "--db",
        str(tmp_path / "r.db"),
        "-o",
        str(report),
        "--quiet",
        *args,
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert report.exists(), result.stderr
    return result.returncode, json.loads(report.read_text())


def statuses(report: dict) -> dict[str, str]:
    return {f["rule_id"]: f["status"] for f in report["findings"]}


@pytest.fixture(scope="module")
def expiring_server(pki: lab.Pki) -> Iterator[lab.PythonTlsServer]:
    issued = pki.issue(["localhost"], days_valid=(-80, 3))
    with lab.PythonTlsServer(lab.server_context(issued), hsts="max-age=600") as server:
        yield server


def test_certificates_pack_flags_an_expiring_certificate(
    tmp_path: Path, expiring_server: lab.PythonTlsServer, pki: lab.Pki
) -> None:
    # given a server whose certificate expires in 3 days, trusted through --ca-file
    target = f"tls://localhost:{expiring_server.port}?http_port=0"
    # when
    code, report = rempart_scan(
        tmp_path, target, "--ca-file", pki.ca_file, "-p", "certificates", "--fail-on", "critical"
    )
    # then the report carries the facts and the failing rule, and the gate fails
    assert code == 1
    resource = report["resources"][0]
    assert resource["type"] == "tls.endpoint"
    assert resource["facts"]["certificate"]["days_left"] in (2, 3)
    assert resource["facts"]["certificate"]["chain_trusted"] is True
    found = statuses(report)
    assert found["CERT-EXPIRY-001"] == "fail"
    assert found["CERT-EXPIRY-002"] == "skip"
    assert found["CERT-TRUST-001"] == "pass"


def test_web_pack_reads_hsts(tmp_path: Path, expiring_server: lab.PythonTlsServer) -> None:
    target = f"tls://localhost:{expiring_server.port}?http_port=0"
    _, report = rempart_scan(tmp_path, target, "-p", "web-tls")
    found = statuses(report)
    assert found["WEB-HSTS-001"] == "pass"
    assert found["WEB-HSTS-002"] == "fail"  # 600 s is far below a year
    assert found["WEB-REDIR-001"] == "skip"  # no HTTP port looked at


def test_anssi_pack_on_a_legacy_server(tmp_path: Path, rsa_leaf: lab.Issued, pki: lab.Pki) -> None:
    args = ["-min_protocol", "TLSv1", "-cipher", "ALL:@SECLEVEL=0"]
    with lab.OpenSslServer(rsa_leaf, args) as server:
        _, report = rempart_scan(
            tmp_path,
            f"tls://localhost:{server.port}?http_port=0",
            "--ca-file",
            pki.ca_file,
            "-p",
            "anssi-tls",
            "-p",
            "mozilla-intermediate",
        )
    found = statuses(report)
    assert found["TLS-PROTO-002"] == "fail"  # TLS 1.0 and 1.1 accepted
    assert found["TLS-PROTO-001"] == "pass"  # no SSL (OpenSSL 3 cannot serve it)
    assert found["TLS-SUITE-001"] == "fail"  # static RSA suites
    assert found["TLS-SUITE-002"] == "fail"  # anonymous suites
    assert found["TLS-DH-001"] == "pass"
    assert found["TLS-KEY-001"] == "pass"
    assert found["TLS-MOZINT-004"] == "fail"  # DHE


def test_unreachable_target_is_an_error_finding(tmp_path: Path) -> None:
    target = f"tls://127.0.0.1:{lab.closed_port()}"
    code, report = rempart_scan(tmp_path, target, "-p", "certificates", "--fail-on", "high")
    assert code == 3  # a gate fails closed when rules could not be evaluated
    assert report["findings"] and all(f["status"] == "error" for f in report["findings"])


@pytest.mark.parametrize("pack", PACKS)
def test_pack_validates(pack: str) -> None:
    from audit.policy import load_policy
    from policies import BUILTIN_DIR

    policy = load_policy(BUILTIN_DIR / f"{pack}.yaml", known_types=["tls.endpoint"])
    assert policy.rules
    for rule in policy.rules:
        assert rule.controls and rule.remediation
