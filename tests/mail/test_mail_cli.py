"""``rempart scan`` over a mail domain: the engine accepts the derived STARTTLS endpoint,
the mail and TLS packs judge what they should, the JSON report carries both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from checks.mail.lab import MailLab

from .conftest import LAB_SCOPE

REPO = Path(__file__).resolve().parents[2]


def test_scan_a_mail_domain_end_to_end(lab: MailLab, tmp_path: Path) -> None:
    # Given an inventory with the lab's scope, its resolver in the mail block, its CA
    inventory = tmp_path / "inventory.yaml"
    mail = {k: v for k, v in lab.options["dns"].items() if k in ("resolvers", "dnssec_anchors")}
    inventory.write_text(
        yaml.safe_dump(
            {
                "scope": {"networks": list(LAB_SCOPE.networks), "domains": list(LAB_SCOPE.domains)},
                "mail": mail,
                "trust": {"ca_file": lab.pki.ca_file},
                "systems": [{"name": "Messagerie", "targets": [lab.uri("mailflawed.test")]}],
            }
        )
    )
    report = tmp_path / "out.json"
    # When it is scanned with the mail pack and a TLS pack
    run = subprocess.run(
        [sys.executable, "-m", "audit", "scan", "-i", str(inventory), "-p", "mail-auth",
         "-p", "certificates", "--db", str(tmp_path / "r.db"), "-o", str(report), "--quiet"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # Then it completes (no --fail-on) and both resources are judged
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    types = {r["type"]: r["key"] for r in data["resources"]}
    port = lab.smtp_ports["mailflawed.test"]
    assert types == {
        "mail.domain": "mail://mailflawed.test",
        "tls.endpoint": f"smtp://mx.mailflawed.test:{port}",
    }
    status = {(f["rule_id"], f["resource_key"]): f["status"] for f in data["findings"]}
    assert status[("MAIL-DMARC-001", "mail://mailflawed.test")] == "fail"
    assert status[("MAIL-SPF-003", "mail://mailflawed.test")] == "fail"
    assert status[("CERT-EXPIRY-001", f"smtp://mx.mailflawed.test:{port}")] == "fail"
    assert not [f for f in data["findings"] if f["status"] == "error"], data["findings"]


def test_two_domains_sharing_an_mx_give_one_endpoint(lab: MailLab, tmp_path: Path) -> None:
    # Given two domains whose MX is the same host, scanned together
    inventory = tmp_path / "inventory.yaml"
    mail = {k: v for k, v in lab.options["dns"].items() if k in ("resolvers", "dnssec_anchors")}
    targets = [lab.uri("mailgood.test"), lab.uri("mailtwin.test", dkim=())]
    inventory.write_text(
        yaml.safe_dump(
            {
                "scope": {"networks": list(LAB_SCOPE.networks), "domains": list(LAB_SCOPE.domains)},
                "mail": mail,
                "trust": {"ca_file": lab.pki.ca_file},
                "systems": [{"name": "Messagerie", "targets": targets}],
            }
        )
    )
    report = tmp_path / "out.json"
    run = subprocess.run(
        [sys.executable, "-m", "audit", "scan", "-i", str(inventory), "-p", "mail-auth",
         "-p", "certificates", "--db", str(tmp_path / "r.db"), "-o", str(report), "--quiet"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # Then the scan completes and the shared MX is judged once per rule
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    port = lab.smtp_ports["mailgood.test"]
    endpoint = f"smtp://mx.mailgood.test:{port}"
    keys = [r["key"] for r in data["resources"]]
    assert sorted(set(keys)) == sorted(
        ["mail://mailgood.test", "mail://mailtwin.test", endpoint]
    ), keys
    fingerprints = [f["fingerprint"] for f in data["findings"]]
    assert len(fingerprints) == len(set(fingerprints))
    expiry = [f for f in data["findings"] if f["rule_id"] == "CERT-EXPIRY-001"]
    assert [f["status"] for f in expiry] == ["pass"]


def test_resolver_and_anchors_from_the_command_line(lab: MailLab, tmp_path: Path) -> None:
    # Given the lab's resolver and anchor on the command line (the dns settings every
    # family that reads DNS receives), and a scope in the inventory
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {"scope": {"networks": list(LAB_SCOPE.networks), "domains": list(LAB_SCOPE.domains)}}
        )
    )
    dns = lab.options["dns"]
    report = tmp_path / "out.json"
    run = subprocess.run(
        [sys.executable, "-m", "audit", "scan", lab.uri("mailgood.test"), "-i", str(inventory),
         "--resolver", dns["resolvers"][0], "--dnssec-anchors", dns["dnssec_anchors"],
         "--ca-file", lab.pki.ca_file, "-p", "mail-auth", "--db", str(tmp_path / "r.db"),
         "-o", str(report), "--quiet"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    status = {f["rule_id"]: f["status"] for f in data["findings"]}
    assert set(status.values()) <= {"pass", "skip"}, status
    assert status["MAIL-DANE-001"] == "pass"
