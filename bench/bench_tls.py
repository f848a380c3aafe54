"""Time `rempart scan` against sslyze on the same local TLS endpoints.

    .venv/bin/python bench/bench_tls.py [--servers 20] [--runs 3] [--sslyze PATH]

Starts N `openssl s_server` endpoints on 127.0.0.1 (four profiles: legacy TLS 1.0-1.3 with
ALL:@SECLEVEL=0, default TLS 1.2+1.3, TLS 1.3 only, ECDHE+AESGCM with server order), then
runs, each as one whole process measured with wait4 (wall time, CPU, peak RSS):

* rempart: `rempart scan tls://localhost:P?http_port=0 ... -p anssi-tls -o out.json`
* sslyze:  `sslyze --sslv2 --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 --elliptic_curves
            --certinfo --mozilla_config disable --json_out out.json localhost:P ...`

each ``--runs`` times in turn (medians reported, with the spread), and checks both found the
same protocols and the same accepted suites on every endpoint, on every run.
sslyze is not a dependency: install it apart (`python -m venv /tmp/sslyze-venv &&
/tmp/sslyze-venv/bin/pip install sslyze`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from checks.tls import lab

PROFILES = [
    ("legacy", "rsa", ["-min_protocol", "TLSv1", "-cipher", "ALL:@SECLEVEL=0"]),
    ("default", "rsa", []),
    ("tls13", "ec", ["-tls1_3"]),
    ("ecdhe-gcm", "rsa", ["-tls1_2", "-cipher", "ECDHE+AESGCM", "-serverpref"]),
]
SSLYZE_KEYS = {
    "SSLv2": "ssl_2_0_cipher_suites",
    "SSLv3": "ssl_3_0_cipher_suites",
    "TLSv1.0": "tls_1_0_cipher_suites",
    "TLSv1.1": "tls_1_1_cipher_suites",
    "TLSv1.2": "tls_1_2_cipher_suites",
    "TLSv1.3": "tls_1_3_cipher_suites",
}


def measure(command: list[str]) -> dict[str, float]:
    """Run one process; wall time, user+sys CPU and peak RSS (MiB) from wait4."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        error = process.stderr.read().decode()[-2000:] if process.stderr else ""
        raise SystemExit(f"{command[0]} failed: {error}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mib": usage.ru_maxrss / 1024,
    }


FAMILY_ONLY = """
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit
from audit.plugins import CheckContext
from checks.tls import FAMILY
ctx = CheckContext(timeout=30, ca_file=sys.argv[1])
targets = [FAMILY.parse(urlsplit(u), u) for u in sys.argv[2:]]
with ThreadPoolExecutor(len(targets)) as pool:
    observations = list(pool.map(lambda t: FAMILY.collect(t, ctx), targets))
assert all(o.resources for o in observations)
"""


def figures(run: dict[str, float]) -> str:
    return f"wall {run['wall_s']:.2f} s  cpu {run['cpu_s']:.2f} s  peak {run['peak_mib']:.0f} MiB"


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median of each figure over the runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def spread(runs: list[dict[str, float]]) -> str:
    walls = sorted(run["wall_s"] for run in runs)
    return f"(wall {walls[0]:.2f}-{walls[-1]:.2f} s over {len(runs)} runs)"


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


def ours(report: Path) -> dict[int, dict[str, set[str]]]:
    data = json.loads(report.read_text())
    found: dict[int, dict[str, set[str]]] = {}
    for resource in data["resources"]:
        suites = resource["facts"]["cipher_suites"]
        found[resource["facts"]["port"]] = {
            p: set(s) for p, s in suites.items() if s or p == "SSLv2"
        }
    return found


def theirs(report: Path) -> dict[int, dict[str, set[str]]]:
    data = json.loads(report.read_text())
    found: dict[int, dict[str, set[str]]] = {}
    for server in data["server_scan_results"]:
        result = server["scan_result"]
        port = server["server_location"]["port"]
        found[port] = {}
        for protocol, key in SSLYZE_KEYS.items():
            accepted = result[key]["result"]["accepted_cipher_suites"]
            if accepted:
                found[port][protocol] = {a["cipher_suite"]["name"] for a in accepted}
    return found


NOT_TESTED_BY_SSLYZE = frozenset(
    {"TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256", "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256"}
)
"""Accepted by the legacy profile (``openssl ciphers -s -tls1_2 'ALL:@SECLEVEL=0'`` lists
them) but absent from sslyze's suite list, so only rempart can report them."""


Suites = dict[int, dict[str, set[str]]]


def compare(a: Suites, b: Suites) -> list[str]:
    """One line per (endpoint, protocol) where the two disagree, naming the suites."""
    differences = []
    for port in sorted(set(a) | set(b)):
        mine, other = a.get(port, {}), b.get(port, {})
        for protocol in sorted(set(mine) | set(other)):
            extra = mine.get(protocol, set()) - other.get(protocol, set()) - NOT_TESTED_BY_SSLYZE
            only_mine = sorted(extra)
            only_other = sorted(other.get(protocol, set()) - mine.get(protocol, set()))
            if only_mine or only_other:
                differences.append(
                    f"  port {port} {protocol}: only rempart {only_mine}; only sslyze {only_other}"
                )
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sslyze", default="/tmp/sslyze-venv/bin/sslyze")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        pki = lab.Pki(work / "pki")
        leaves = {
            "rsa": pki.issue(["localhost"], key=lab.rsa_key(2048)),
            "ec": pki.issue(["localhost"]),
        }
        servers = []
        for i in range(args.servers):
            _, key, options = PROFILES[i % len(PROFILES)]
            servers.append(stack.enter_context(lab.OpenSslServer(leaves[key], options)))
        ports = [s.port for s in servers]
        rempart = [
            sys.executable,
            "-m",
            "audit",
            "scan",
            *[f"tls://localhost:{p}?http_port=0" for p in ports],
            "-p",
            "anssi-tls",
            "--ca-file",
            pki.ca_file,
            "--db",
            str(work / "r.db"),
            "-o",
            str(work / "rempart.json"),
            "--quiet",
            "--concurrency",
            str(args.servers),
        ]
        sslyze = [
            args.sslyze,
            "--sslv2",
            "--sslv3",
            "--tlsv1",
            "--tlsv1_1",
            "--tlsv1_2",
            "--tlsv1_3",
            "--elliptic_curves",
            "--certinfo",
            "--certinfo_ca_file",
            pki.ca_file,
            "--mozilla_config",
            "disable",
            "--quiet",
            "--json_out",
            str(work / "sslyze.json"),
            *[f"localhost:{p}" for p in ports],
        ]
        print(f"{args.servers} openssl s_server endpoints on 127.0.0.1")
        print(
            "rempart:",
            " ".join(rempart[2:4]),
            "tls://localhost:PORT?http_port=0 x",
            args.servers,
            "-p anssi-tls",
        )
        family_only = [
            sys.executable,
            "-c",
            FAMILY_ONLY,
            pki.ca_file,
            *[f"tls://localhost:{p}?http_port=0" for p in ports],
        ]
        have_sslyze = Path(args.sslyze).exists()
        if not have_sslyze:
            print(f"sslyze not found at {args.sslyze}: comparison skipped")
        ours_runs, family_runs, theirs_runs, differences = [], [], [], []
        for run in range(args.runs):
            print(f" run {run + 1}: {load()}")
            ours_runs.append(measure(rempart))
            print("  rempart ", figures(ours_runs[-1]))
            family_runs.append(measure(family_only))
            print("  family  ", figures(family_runs[-1]))
            if have_sslyze:
                theirs_runs.append(measure(sslyze))
                print("  sslyze  ", figures(theirs_runs[-1]))
                differences += compare(ours(work / "rempart.json"), theirs(work / "sslyze.json"))
        ours_run, family_run = median(ours_runs), median(family_runs)
        print("median rempart ", figures(ours_run), spread(ours_runs))
        print("median family  ", figures(family_run), spread(family_runs))
        if not have_sslyze:
            return
        theirs_run = median(theirs_runs)
        print("median sslyze  ", figures(theirs_run), spread(theirs_runs))
        wall, cpu = theirs_run["wall_s"], theirs_run["cpu_s"]
        print(
            f"  ratio    wall x{wall / ours_run['wall_s']:.1f}  cpu x{cpu / ours_run['cpu_s']:.1f}"
            f"  peak x{theirs_run['peak_mib'] / ours_run['peak_mib']:.1f}"
            f"  (family alone: wall x{wall / family_run['wall_s']:.1f})"
        )
        print(
            "  same protocols and suites on every endpoint, every run (rempart also finds the"
            " two DH_anon CAMELLIA SHA256 suites sslyze does not test)"
            if not differences
            else "\n".join(sorted(set(differences)))
        )


if __name__ == "__main__":
    main()
