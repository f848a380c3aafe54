"""Credentials never enter the store, the logs or the reports.

A real ``rempart scan`` of the moto lab (real HTTP on 127.0.0.1) runs with distinctive
fake credentials and a session token, while an IAM user of the account holds an access
key of its own. Every report format is written by the scan and again by ``rempart
report``; stdout, stderr, the logging output (root at INFO, Rempart's own namespaces at
DEBUG) and every byte of the SQLite file and its WAL are searched for each secret.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .conftest import REPO, LabProcess, rempart

ACCESS_KEY_ID = "AKIAHARDENINGZQ7X4KEY"
SECRET_KEY = "hardening/Secret+Key-zq7x4-0b5e9c1d2a"
SESSION_TOKEN = "IQoJhardeningSessionToken-zq7x4-FwoGZXIvYXdzEJr"
FORMATS = ("json", "html", "sarif", "xml", "csv", "md", "ocsf.json")
LOGGED_MAIN = """
import logging, sys
logging.basicConfig(level=logging.INFO, filename=sys.argv.pop(1), force=True)
for name in ("audit", "checks", "reports"):
    logging.getLogger(name).setLevel(logging.DEBUG)
from audit.cli import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def lab(aws_lab: LabProcess) -> tuple[LabProcess, dict[str, str]]:
    iam = aws_lab.client("iam")
    iam.create_user(UserName="hardening-key-holder")
    key = iam.create_access_key(UserName="hardening-key-holder")["AccessKey"]
    return aws_lab, {"user key id": key["AccessKeyId"], "user secret": key["SecretAccessKey"]}


def environment(lab: LabProcess) -> dict[str, str]:
    return {
        **lab.environment(),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": str(REPO),
    }


def logged_rempart(log: Path, *args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", LOGGED_MAIN, str(log), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_no_secret_in_store_logs_or_any_report(
    tmp_path: Path, lab: tuple[LabProcess, dict[str, str]]
) -> None:
    running, user_key = lab
    env = environment(running)
    db = tmp_path / "r.db"
    outputs = [str(tmp_path / f"scan.{fmt}") for fmt in FORMATS]
    # Given a scan that writes every format, logging to a file
    code, scan_output = logged_rempart(
        tmp_path / "scan.log", "scan", running.target(), "-p", "aws-baseline",
        "--db", str(db), *(a for o in outputs for a in ("-o", o)), env=env, cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, scan_output
    # and the same scan rendered again from the store, in both languages
    report_runs = [
        rempart("report", "--db", str(db), "--lang", lang, env=env, cwd=tmp_path,
                *(a for fmt in FORMATS for a in ("-o", str(tmp_path / f"{lang}.{fmt}"))))
        for lang in ("fr", "en")
    ]  # fmt: skip
    findings = rempart("findings", "--db", str(db), "--all", "--json", env=env, cwd=tmp_path)
    assert all(run.code == 0 for run in [*report_runs, findings])
    # Then no secret appears anywhere: files, store bytes, WAL, logs, terminal
    streams = [scan_output, findings.out, *(r.out + r.err for r in report_runs)]
    secrets = {
        "access key id": ACCESS_KEY_ID,
        "secret key": SECRET_KEY,
        "session token": SESSION_TOKEN,
        **user_key,
    }
    blobs = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert {"r.db", "scan.log", "scan.json", "fr.html", "en.sarif"} <= set(blobs)
    assert len(findings.out.splitlines()) > 20  # the scan really observed the account
    assert b"Found credentials in environment variables" in blobs["scan.log"]
    for what, secret in secrets.items():
        for name, blob in blobs.items():
            assert secret.encode() not in blob, f"{what} found in {name}"
        for stream in streams:
            assert secret not in stream, f"{what} printed"
