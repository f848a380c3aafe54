"""Time `rempart scan` against sslyze on the same local TLS endpoints.

    .venv/bin/python bench/bench_tls.py [--servers 20] [--runs 3] [--sslyze PATH]
                                        [--baseline OTHER_CHECKOUT]

Starts N `openssl s_server` endpoints on 127.0.0.1 (four profiles: legacy TLS 1.0-1.3 with
ALL:@SECLEVEL=0, default TLS 1.2+1.3, TLS 1.3 only, ECDHE+AESGCM with server order), then
runs, each as one whole process measured with wait4 (wall time, CPU, peak RSS):

* rempart:  `rempart scan tls://localhost:P?http_port=0 ... -p anssi-tls -o out.json`
            (one store kept across runs, the user's policy cache as it is);
* no cache: the same with REMPART_NO_CACHE=1 (every pack validated and compiled again);
* start-up: what the scan does before its first probe (imports, output check, plan, policy);
* family:   the TLS family's collection alone, in a thread pool (no engine, store, report);
* baseline, base start: the scan and its start-up from ``--baseline`` (another checkout:
            a before/after comparison under the same load);
* sslyze:   `sslyze --sslv2 --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 --elliptic_curves
            --certinfo --mozilla_config disable --json_out out.json localhost:P ...`

once untimed (a warm-up: page cache, bytecode, policy cache), then ``--runs`` times in turn
(medians of fresh processes reported, with the spread), and checks both found the same
protocols and the same accepted suites on every endpoint, on every run.
sslyze is not a dependency: it is installed apart in .venv-oracle (`make oracle-venv`), found
there first, then on PATH; ``--sslyze PATH`` names another.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchkit import measure

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


START_UP = """
import sys
import audit.cli, audit.cli.progress
from audit.planning import ScanRequest, build_plan
from audit.registry import load_families, load_renderers
load_renderers()
build_plan(ScanRequest(targets=sys.argv[1:], policies=["anssi-tls"]), load_families())
"""
"""What ``rempart scan`` does before its first probe (imports, output check, families, plan
and policies; not the store's opening), and no more: the fixed cost that caps the ratio on
small batches."""

Contenders = dict[str, tuple[list[str], dict[str, str]]]
Runs = dict[str, list[dict[str, float]]]


def machine() -> str:
    """Cores and load, printed with the figures: the machine is shared and noisy."""
    return f"{os.cpu_count()} cores, {load()}"


def default_sslyze() -> Path:
    """The oracle venv's sslyze (``make oracle-venv``), else the one on PATH, else /tmp's.

    The oracle venv sits beside this checkout's ``bench/``, or beside the venv running
    this script (a second checkout run with the first one's venv).
    """
    for root in (Path(__file__).resolve().parent.parent, Path(sys.prefix).parent):
        oracle = root / ".venv-oracle" / "bin" / "sslyze"
        if oracle.exists():
            return oracle
    found = shutil.which("sslyze")
    return Path(found) if found else Path("/tmp/sslyze-venv/bin/sslyze")


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


def rempart_command(ports: list[int], ca_file: str, work: Path) -> list[str]:
    """``rempart scan`` of every endpoint into one store, created by the warm-up round.

    A store is kept from scan to scan (history, acceptances); creating one is a first-run
    cost (about 50 ms), not part of the steady state measured here.
    """
    return [
        sys.executable,
        "-m",
        "audit",
        "scan",
        *[f"tls://localhost:{p}?http_port=0" for p in ports],
        "-p",
        "anssi-tls",
        "--ca-file",
        ca_file,
        "--db",
        str(work / "r.db"),
        "-o",
        str(work / "rempart.json"),
        "--quiet",
        "--concurrency",
        str(len(ports)),
    ]


def sslyze_command(sslyze: str, ports: list[int], ca_file: str, work: Path) -> list[str]:
    return [
        sslyze,
        "--sslv2",
        "--sslv3",
        "--tlsv1",
        "--tlsv1_1",
        "--tlsv1_2",
        "--tlsv1_3",
        "--elliptic_curves",
        "--certinfo",
        "--certinfo_ca_file",
        ca_file,
        "--mozilla_config",
        "disable",
        "--quiet",
        "--json_out",
        str(work / "sslyze.json"),
        *[f"localhost:{p}" for p in ports],
    ]


def contenders(ports: list[int], ca_file: str, work: Path, sslyze: str | None) -> Contenders:
    """Label → (command, extra environment), timed in this order on every run."""
    uris = [f"tls://localhost:{p}?http_port=0" for p in ports]
    rempart = rempart_command(ports, ca_file, work)
    table: Contenders = {
        "rempart": (rempart, {}),
        "no cache": (rempart, {"REMPART_NO_CACHE": "1"}),
        "start-up": ([sys.executable, "-c", START_UP, *uris], {}),
        "family": ([sys.executable, "-c", FAMILY_ONLY, ca_file, *uris], {}),
    }
    if sslyze:
        table["sslyze"] = (sslyze_command(sslyze, ports, ca_file, work), {})
    return table


def add_baseline(table: Contenders, tree: Path, work: Path) -> None:
    """Time the scan and its start-up from another checkout too, in the same rounds.

    On a shared machine the load moves between two invocations; before/after figures
    taken round by round see the same load. ``PYTHONSAFEPATH`` keeps the working
    directory off ``sys.path``, so ``-m audit`` is the other checkout's.
    """
    env = {"PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
    command = list(table["rempart"][0])
    command[command.index("--db") + 1] = str(work / "baseline.db")
    command[command.index("-o") + 1] = str(work / "baseline.json")
    table["baseline"] = (command, env)
    table["base start"] = (table["start-up"][0], env)


def timed_runs(table: Contenders, runs: int, work: Path) -> tuple[Runs, list[str]]:
    """One untimed warm-up of each, then ``runs`` rounds; each round checks the verdicts."""
    results: Runs = {label: [] for label in table}
    differences: list[str] = []
    for run in range(-1, runs):
        print(f" {'warm-up' if run < 0 else f'run {run + 1}'}: {load()}")
        for label, (command, env) in table.items():
            figures_ = measure(command, env)
            if run >= 0:
                results[label].append(figures_)
                print(f"  {label:10}", figures(figures_))
        if "sslyze" in table:
            differences += compare(ours(work / "rempart.json"), theirs(work / "sslyze.json"))
    return results, differences


def report(results: Runs, differences: list[str]) -> None:
    medians = {label: median(runs) for label, runs in results.items()}
    for label, runs in results.items():
        print(f"median {label:10}", figures(medians[label]), spread(runs))
    if "sslyze" not in medians:
        return
    ours_run, theirs_run = medians["rempart"], medians["sslyze"]
    wall, cpu = theirs_run["wall_s"], theirs_run["cpu_s"]
    print(
        f"  ratio    wall x{wall / ours_run['wall_s']:.1f}  cpu x{cpu / ours_run['cpu_s']:.1f}"
        f"  peak x{theirs_run['peak_mib'] / ours_run['peak_mib']:.1f}"
        f"  (no cache: wall x{wall / medians['no cache']['wall_s']:.1f};"
        f" family alone: wall x{wall / medians['family']['wall_s']:.1f})"
    )
    if "baseline" in medians:
        base = medians["baseline"]
        print(f"  baseline ratio wall x{wall / base['wall_s']:.1f}  cpu x{cpu / base['cpu_s']:.1f}")
    print(
        "  same protocols and suites on every endpoint, every run (rempart also finds the"
        " two DH_anon CAMELLIA SHA256 suites sslyze does not test)"
        if not differences
        else "\n".join(sorted(set(differences)))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sslyze", default=str(default_sslyze()))
    parser.add_argument(
        "--baseline", type=Path, help="another checkout of rempart, timed in the same rounds"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        pki = lab.Pki(work / "pki")
        leaves = {
            "rsa": pki.issue(["localhost"], key=lab.rsa_key(2048)),
            "ec": pki.issue(["localhost"]),
        }
        ports = []
        for i in range(args.servers):
            _, key, options = PROFILES[i % len(PROFILES)]
            ports.append(stack.enter_context(lab.OpenSslServer(leaves[key], options)).port)
        print(f"{args.servers} openssl s_server endpoints on 127.0.0.1; {machine()}")
        print(f"rempart: audit scan tls://localhost:PORT?http_port=0 x {args.servers} -p anssi-tls")
        sslyze = args.sslyze if Path(args.sslyze).exists() else None
        if sslyze is None:
            print(f"sslyze not found at {args.sslyze}: comparison skipped")
        table = contenders(ports, pki.ca_file, work, sslyze)
        if args.baseline:
            add_baseline(table, args.baseline.resolve(), work)
        report(*timed_runs(table, args.runs, work))


if __name__ == "__main__":
    main()
