"""Time the ports family against bare nmap with the same arguments on the same ports.

    .venv/bin/python bench/bench_ports.py [--listeners 20] [--openssl 0] [--reps 5] [--sv 1]
                                          [--timeout 60]

Starts N loopback listeners from :mod:`checks.ports.lab` (old OpenSSH banners, MySQL
greetings, HTTP, Redis and telnet servers, in turn) on 127.0.0.1, plus ``--openssl``
``openssl s_server -www`` processes (the slow TLS service of :mod:`checks.tls.lab`), then
runs, alternating, each as one whole process timed by wall clock:

* rempart: ``rempart scan ports://127.0.0.1?ports=P1,...,PN -p exposure-baseline
  --db tmp.db -o out.json --timeout T --quiet`` (parse, nmap, facts, policy, store, report);
* collect: ``python -c`` calling ``checks.ports.collect`` once (the family alone);
* nmap:    ``nmap -oX - <the arguments the family builds for that target> -p P1,...,PN
  127.0.0.1`` — the very list :func:`checks.ports.runner.build_arguments` returns, as one
  run with service detection and without ``--host-timeout`` (what a user of nmap runs; the
  family splits it into a port scan and one run per port).

and checks that all found the same open ports, and that collect and nmap report the same
product and version on each. Prints median and min wall time per tool and the ratios
against nmap (goal: rempart ≤ 1.1× nmap with service detection).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

from audit.plugins import CheckContext
from checks.ports import FAMILY
from checks.ports.collect import plan_requests
from checks.ports.lab import LISTENERS
from checks.ports.runner import build_arguments
from checks.tls.lab import OpenSslServer, Pki

KINDS = ("ssh", "mysql", "http", "redis", "telnet")
ROOT = Path(__file__).resolve().parents[1]


COLLECT = """
import sys
from urllib.parse import urlsplit
from audit.plugins import CheckContext
from checks.ports import FAMILY
uri = sys.argv[1]
observation = FAMILY.collect(FAMILY.parse(urlsplit(uri), uri),
                             CheckContext(timeout=float(sys.argv[2])))
print(",".join(f"{r.facts['port']}:{r.facts['product']}:{r.facts['version']}"
               for r in observation.resources if r.type == "net.service"))
"""


def measure(command: list[str]) -> tuple[float, str]:
    """Run one process to the end; its wall time and its standard output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise SystemExit(f"{command[0]} failed ({process.returncode}): {err.decode()[-2000:]}")
    return wall, out.decode()


def nmap_services(xml: str) -> dict[int, str]:
    """Open ports in nmap's XML, with ``product:version`` as the family reports them."""
    found = {}
    for port in ET.fromstring(xml).iter("port"):
        if port.find("state[@state='open']") is None:
            continue
        service = port.find("service")
        attrs = service.attrib if service is not None else {}
        found[int(port.get("portid", "0"))] = f"{attrs.get('product')}:{attrs.get('version')}"
    return found


def collect_services(out: str) -> dict[int, str]:
    """``port:product:version`` items printed by the collect command."""
    items = (item.split(":", 1) for item in out.strip().split(",") if item)
    return {int(port): rest for port, rest in items}


def open_ports(name: str, out: str, report: Path) -> set[int]:
    """The open ports a tool found: from nmap's XML, rempart's JSON report, collect's list."""
    if name == "nmap":
        return set(nmap_services(out))
    if name == "rempart":
        data = json.loads(report.read_text())
        return {r["facts"]["port"] for r in data["resources"] if r["type"] == "net.service"}
    return set(collect_services(out))


def commands(uri: str, ports: str, timeout: float, report: Path) -> dict[str, list[str]]:
    """The three command lines; nmap gets exactly the arguments the family builds."""
    target = FAMILY.parse(urlsplit(uri), uri)
    ctx = CheckContext(timeout=timeout)
    (request,) = plan_requests(target, ctx)
    args = build_arguments(request, is_root=ctx.is_root, host_timeout_s=None)
    return {
        "rempart": [
            sys.executable,
            "-m",
            "audit",
            "scan",
            uri,
            "-p",
            "exposure-baseline",
            "--db",
            str(report.with_suffix(".db")),
            "-o",
            str(report),
            "--timeout",
            str(timeout),
            "--quiet",
        ],
        "collect": [sys.executable, "-c", COLLECT, uri, str(timeout)],
        "nmap": [str(shutil.which("nmap")), "-oX", "-", *args, "-p", ports, "127.0.0.1"],
    }


def start_listeners(stack: ExitStack, count: int, openssl: int, tmp: str) -> set[int]:
    """``count`` lab listeners on 127.0.0.1, the kinds in turn, and ``openssl`` s_servers."""
    ports = {
        stack.enter_context(LISTENERS[KINDS[i % len(KINDS)]]("127.0.0.1")).port
        for i in range(count)
    }
    if openssl:
        issued = Pki(Path(tmp) / "pki").issue(("localhost",))
        ports |= {stack.enter_context(OpenSslServer(issued)).port for _ in range(openssl)}
    return ports


def same_versions(outputs: dict[str, str]) -> None:
    """Stop when collect and nmap disagree on a product or version."""
    family, bare = collect_services(outputs["collect"]), nmap_services(outputs["nmap"])
    wrong = {p: (family.get(p), bare[p]) for p in bare if family.get(p) != bare[p]}
    if wrong:
        raise SystemExit(f"collect and nmap disagree (collect, nmap): {wrong}")


def run(listeners: int, openssl: int, reps: int, sv: str, timeout: float) -> None:
    """Start the listeners, time every tool ``reps`` times, check and print."""
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        expected = start_listeners(stack, listeners, openssl, tmp)
        ports = ",".join(str(port) for port in sorted(expected))
        uri = f"ports://127.0.0.1?ports={ports}" + ("&sv=0" if sv == "0" else "")
        times: dict[str, list[float]] = {"rempart": [], "collect": [], "nmap": []}
        for rep in range(reps):
            report = Path(tmp) / f"r{rep}.json"
            outputs = {}
            for name, command in commands(uri, ports, timeout, report).items():
                if rep == 0:
                    print(f"$ {' '.join(command)}", file=sys.stderr)
                wall, outputs[name] = measure(command)
                times[name].append(wall)
                found = open_ports(name, outputs[name], report)
                if found != expected:
                    raise SystemExit(f"{name} found {sorted(found)}, expected {sorted(expected)}")
            if sv == "1":
                same_versions(outputs)
        print_table(
            f"{listeners} loopback listeners ({', '.join(KINDS)}) + {openssl} openssl s_server",
            reps,
            sv,
            times,
        )


def nmap_version() -> str:
    out = subprocess.run(["nmap", "--version"], capture_output=True, text=True, check=False)
    return out.stdout.split()[2]


def print_table(what: str, reps: int, sv: str, times: dict[str, list[float]]) -> None:
    """Median, min and max wall time per tool, and the ratio of medians to nmap."""
    base = statistics.median(times["nmap"])
    print(f"\n{what}, sv={sv}, {reps} runs each, nmap {nmap_version()}, {os.cpu_count()} CPUs\n")
    print(f"{'tool':<9} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>6}")
    for name in ("nmap", "collect", "rempart"):
        values = times[name]
        print(
            f"{name:<9} {statistics.median(values):>9.2f} {min(values):>7.2f} "
            f"{max(values):>7.2f} {statistics.median(values) / base:>5.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=20)
    parser.add_argument("--openssl", type=int, default=0)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--sv", choices=("0", "1"), default="1")
    parser.add_argument("--timeout", type=float, default=60.0)
    options = parser.parse_args()
    if shutil.which("nmap") is None:
        raise SystemExit("nmap is not installed: apt-get install nmap")
    os.chdir(ROOT)
    run(options.listeners, options.openssl, options.reps, options.sv, options.timeout)


if __name__ == "__main__":
    main()
