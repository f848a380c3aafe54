"""End to end through the real command: an inventory of sites, both packs, store and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from checks.web import lab

from .conftest import site


def test_a_scan_judges_the_sites_and_stores_no_secret(
    web: lab.NginxLab, pki: lab.Pki, tmp_path: Path
) -> None:
    # Given an inventory of the hardened and bare sites, plain HTTP redirecting to HTTPS
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "systems:\n  - name: Portail\n    targets:\n"
        f"      - {site(web, 'hardened')}\n      - {site(web, 'bare')}\n"
        f"      - {site(web, 'leaving', '/start')}\n"
        f"web: {{http_port: {web.port('upgrade')}}}\ntrust: {{ca_file: {pki.ca_file}}}\n"
    )
    db, report, html = tmp_path / "r.db", tmp_path / "r.json", tmp_path / "r.html"
    # When it is scanned with both packs
    command = [sys.executable, "-m", "audit", "scan", "-i", str(inventory), "--db", str(db),
               "-p", "web-headers", "-p", "security-txt", "-o", str(report), "-o", str(html),
               "--quiet", "--fail-on", "high"]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    # Then the bare site fails high rules (exit 1), the hardened one passes them all
    assert run.returncode == 1, run.stderr
    findings = json.loads(report.read_text())["findings"]
    hardened = {
        f["rule_id"]: f["status"] for f in findings if f["resource_key"] == site(web, "hardened")
    }
    assert set(hardened.values()) == {"pass"}, hardened
    bare = {f["rule_id"]: f["status"] for f in findings if f["resource_key"] == site(web, "bare")}
    assert bare["WEBH-COOKIE-001"] == "fail" and bare["SECTXT-PRESENT-001"] == "fail"
    # and no cookie value, header secret or URL ticket reaches the store or the reports
    for path in (db, report, html):
        data = path.read_bytes()
        for secret in (b"secret-value", b"sessionid=x1", b"s3cr3t"):
            assert secret not in data, (path.name, secret)
