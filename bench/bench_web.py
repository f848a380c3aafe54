"""Time the web family on N loopback sites against a curl floor and the MDN Observatory.

    .venv/bin/python bench/bench_web.py [--sites 200] [--runs 3] [--observatory-sites 20]

One nginx process (``checks/web/lab.py``) serves N https sites on 127.0.0.1, in three
kinds (hardened, weak, bare), with the lab PKI. Then, each as whole processes measured
with wait4 (wall time, CPU, peak RSS), once untimed and ``--runs`` times in turn:

* rempart:  ``rempart scan -i inventory.yaml -p web-headers -p security-txt -o out.json``
            (every site; the inventory sets ``web: {http_port: 0}``: no plain-HTTP port);
* family:   the web family's collection alone, in a pool of 32 threads (no engine, store,
            report);
* curl -sI: the floor, as the issue states it: one ``curl -sI`` process per site, in a
            loop (sequential), and the same loop run 32 at a time (``xargs -P 32``);
* observatory: ``@mdn/mdn-http-observatory`` (``make observatory-oracle``) scoring
            ``--observatory-sites`` of the sites, one node process per site, sequential
            (as its CLI runs), extrapolated to N per site.

Rempart does more per site than ``curl -sI``: a GET of the page with its body (parsed for
third parties), an OPTIONS preflight and a GET of security.txt, on one kept-alive TLS
connection; curl makes one HEAD. The figures say sites per second; the ratios are
printed, and the facts are checked (every site observed, the hardened ones graded A+).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchkit import measure

from audit.labkit import Pki, closed_port
from checks.web import lab

REPO = Path(__file__).resolve().parent.parent
OBSERVATORY = REPO / ".oracle-observatory" / "node_modules" / "@mdn" / "mdn-http-observatory"
HARNESS = REPO / "tests" / "oracle" / "observatory_scan.mjs"
CONCURRENCY = 32

FAMILY_ONLY = """
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit
from audit.plugins import CheckContext
from checks.web import FAMILY
ctx = CheckContext(timeout=30, ca_file=sys.argv[1], options={"web": {"http_port": 0}})
targets = [FAMILY.parse(urlsplit(u), u) for u in sys.argv[2:]]
with ThreadPoolExecutor(32) as pool:
    observations = list(pool.map(lambda t: FAMILY.collect(t, ctx), targets))
assert all(o.resources for o in observations), [o.problems for o in observations if o.problems]
"""


def sites(count: int) -> list[lab.Site]:
    kinds = (lab.hardened_site, lab.weak_site, lab.Site)
    return [kinds[i % 3](f"site{i}") for i in range(count)]


def inventory(directory: Path, urls: list[str], ca_file: str) -> Path:
    path = directory / "inventory.yaml"
    body = {
        "systems": [{"name": "Bench", "targets": urls}],
        "trust": {"ca_file": ca_file},
        "web": {"http_port": 0},
    }
    path.write_text(json.dumps(body))
    return path


def curl_loop(urls: list[str], ca_file: str, directory: Path, parallel: int) -> list[str]:
    listing = directory / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    curl = f"curl -sI --cacert {ca_file} -o /dev/null"
    if parallel == 1:
        return ["sh", "-c", f'while read u; do {curl} "$u"; done < {listing}']
    return ["sh", "-c", f"xargs -P {parallel} -n 1 {curl} < {listing}"]


def observatory_loop(
    web: lab.NginxLab, names: list[str], ca_file: str, directory: Path
) -> list[str]:
    plain = closed_port()
    lines = [
        f"node {HARNESS} {OBSERVATORY} localhost {plain} {web.port(name)} > /dev/null"
        for name in names
    ]
    script = directory / "observatory.sh"
    script.write_text(f"export NODE_EXTRA_CA_CERTS={ca_file}\n" + "\n".join(lines) + "\n")
    return ["sh", str(script)]


def check(out: Path, count: int) -> None:
    """Every site observed; the hardened ones graded A+ by the family's Observatory score."""
    report = json.loads(out.read_text())
    resources = [r for r in report["resources"] if r["type"] == "web.site"]
    assert len(resources) == count, (len(resources), count)
    grades = {r["key"]: (r["facts"].get("observatory") or {}).get("grade") for r in resources}
    assert sum(grade == "A+" for grade in grades.values()) >= count // 3, grades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--observatory-sites", type=int, default=20)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="rempart-bench-web-"))
    try:
        run(args, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run(args: argparse.Namespace, directory: Path) -> None:
    pki = Pki(directory / "pki")
    issued = pki.issue(("localhost", "127.0.0.1"))
    with lab.NginxLab(issued, sites(args.sites), directory=directory / "nginx") as web:
        urls = [f"https://localhost:{site.port}/" for site in web.sites]
        out = directory / "out.json"
        listing = str(inventory(directory, urls, pki.ca_file))
        rempart = [sys.executable, "-m", "audit", "scan", "-q", "-i", listing,
                   "-p", "web-headers", "-p", "security-txt", "--db", str(directory / "r.db"),
                   "-o", str(out), "--concurrency", str(CONCURRENCY)]  # fmt: skip
        contenders = {
            "rempart": rempart,
            "family": [sys.executable, "-c", FAMILY_ONLY, pki.ca_file, *urls],
            "curl -sI loop": curl_loop(urls, pki.ca_file, directory, 1),
            f"curl -sI x{CONCURRENCY}": curl_loop(urls, pki.ca_file, directory, CONCURRENCY),
        }
        names = [site.name for site in web.sites[: args.observatory_sites]]
        if (OBSERVATORY / "package.json").exists() and shutil.which("node") and names:
            contenders["observatory"] = observatory_loop(web, names, pki.ca_file, directory)
        else:
            print("observatory: not installed (make observatory-oracle), skipped")
        results = race(contenders, args.runs)
        check(out, args.sites)
    report(results, args.sites, len(names))


def race(contenders: dict[str, list[str]], runs: int) -> dict[str, list[dict[str, float]]]:
    for command in contenders.values():  # warm-up: page cache, bytecode, policy cache
        measure(command)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, command in contenders.items():
            results[name].append(measure(command))
    return results


def report(results: dict[str, list[dict[str, float]]], count: int, observed: int) -> None:
    print(f"{count} sites on loopback, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    per_site: dict[str, float] = {}
    for name, runs in results.items():
        wall = statistics.median(run["wall_s"] for run in runs)
        cpu = statistics.median(run["cpu_s"] for run in runs)
        peak = statistics.median(run["peak_mib"] for run in runs)
        sites = observed if name == "observatory" else count
        per_site[name] = wall / sites
        walls = sorted(run["wall_s"] for run in runs)
        print(
            f"{name:16} {sites:4} sites  wall {wall:7.2f} s ({walls[0]:.2f}-{walls[-1]:.2f})"
            f"  cpu {cpu:7.2f} s  peak {peak:5.0f} MiB  {sites / wall:7.1f} sites/s"
        )
    if "observatory" in per_site:
        print(
            f"rempart vs observatory: x{per_site['observatory'] / per_site['rempart']:.1f} faster"
        )
    for floor in ("curl -sI loop", f"curl -sI x{CONCURRENCY}"):
        print(f"rempart / {floor}: {per_site['rempart'] / per_site[floor]:.2f}x the time")


if __name__ == "__main__":
    main()
