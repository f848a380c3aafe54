"""Run inside ``unshare -mn`` (a private network and mount namespace): a DNS server on
127.0.0.1:53 that never answers, and ``rempart scan`` against names it cannot resolve.

Prints one JSON line per scan: exit code, wall time, stderr's last line, and the
(target, status, reason) of every finding. Nothing leaves the namespace.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from checks.tls import lab

REPO = Path(__file__).resolve().parents[2]


def blackhole_dns(workdir: Path) -> list[socket.socket]:
    """Loopback up, resolv.conf pointing at 127.0.0.1, port 53 bound and never answered."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    resolv = workdir / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 53))
    tcp.listen(16)
    return [udp, tcp]


def scan(workdir: Path, targets: list[str], extra: list[str], ca_file: str) -> dict[str, object]:
    report = workdir / "r.json"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "audit", "scan", *targets, *extra, "--timeout", "3",
         "--db", str(workdir / "r.db"), "-o", str(report), "--quiet", "--ca-file", ca_file],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    findings = json.loads(report.read_text())["findings"] if report.exists() else []
    return {
        "code": run.returncode,
        "elapsed": elapsed,
        "err": (run.stderr.strip().splitlines() or [""])[-1],
        "findings": sorted({(f["target"], f["status"], f["reason"]) for f in findings}),
    }


def main() -> None:
    workdir = Path(sys.argv[1])
    sockets = blackhole_dns(workdir)
    pki = lab.Pki(workdir)
    inventory = workdir / "inventory.yaml"
    inventory.write_text("scope:\n  networks: [127.0.0.1/32]\n  domains: [hang.test]\n")
    with lab.PythonTlsServer(lab.server_context(pki.issue(["localhost"]))) as healthy:
        targets = [f"tls://127.0.0.1:{healthy.port}"]
        targets += [f"tls://h{i}.hang.test" for i in range(12)]
        targets += ["smtp://mail.hang.test", "ports://p.hang.test?ports=1&sv=0"]
        for extra in (["-i", str(inventory)], []):
            print(json.dumps(scan(workdir, targets, extra, pki.ca_file)), flush=True)
    for sock in sockets:
        sock.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(REPO))
    main()
