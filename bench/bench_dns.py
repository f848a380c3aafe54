"""Time the dns family's DNSSEC validation and zone checks, and compare its verdicts with delv's.

    .venv/bin/python bench/bench_dns.py [--domains 200] [--concurrency 32] [--delv-workers 8]

Builds N lab domains under the lab's ``test.`` (a third unsigned, the rest signed with
ECDSA P-256; one in ten with expired signatures), served with the lab root and TLD by
one NSD on loopback (:class:`checks.dns.lab.DnsLab`). Then measures, in this process:

* rempart: the family's observation of every ``dns://`` domain, started on the probe loop
  ``--concurrency`` at a time (as the engine runs them on its own threads): SOA, NS and
  addresses, CAA climbing, the DNSSEC walk from the lab anchor, AXFR and recursion probes
  of both nameservers;
* delv: ``delv -a ANCHOR +root=. @127.0.0.1 -p PORT DOMAIN SOA`` per domain (validation
  only, nothing else), ``--delv-workers`` at a time;

and reports wall time, CPU time (children included for delv), peak RSS, and how many
domains the two validators agree on (secure, insecure, bogus). Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit

from audit.models import Observation
from audit.plugins import CheckContext, Scope
from checks.dns import FAMILY
from checks.dns.lab import DnsLab, Domain


def domains(count: int) -> list[Domain]:
    made = []
    for index in range(count):
        name = f"bench{index:05d}.test"
        made.append(
            Domain(
                name,
                ['@ IN CAA 0 issue "letsencrypt.org"'],
                signed=index % 3 != 0,
                expired=index % 10 == 1,
            )
        )
    return made


def expected(domain: Domain) -> str:
    if not domain.signed:
        return "insecure"
    return "bogus" if domain.expired else "secure"


def rempart(lab: DnsLab, names: list[str], concurrency: int) -> dict[str, str]:
    ctx = CheckContext(timeout=20, scope=Scope(networks=("127.0.0.0/8",)), options=lab.options)
    targets = [FAMILY.parse(urlsplit(f"dns://{n}"), f"dns://{n}") for n in names]
    observations = benchkit.observe_on_loop(FAMILY, targets, ctx, concurrency)
    return {o.target.host: _verdict(o) for o in observations}


def _verdict(observation: Observation) -> str:
    if observation.problems or not observation.resources:
        return f"problem: {observation.problems}"
    return str(observation.resources[0].facts.get("dnssec", {}).get("status"))


def delv(lab: DnsLab, names: list[str], workers: int) -> dict[str, str]:
    fields = lab.anchors_file.read_text().split()
    anchors = lab.directory / "delv-anchors.conf"
    tag, algorithm, digest_type, digest = fields[4], fields[5], fields[6], "".join(fields[7:])
    anchors.write_text(
        f'trust-anchors {{ . static-ds {tag} {algorithm} {digest_type} "{digest}"; }};\n'
    )

    def one(name: str) -> tuple[str, str]:
        command = ["delv", "-a", str(anchors), "+root=.", "@127.0.0.1", "-p", str(lab.port)]
        said = subprocess.run(
            [*command, name, "SOA"], capture_output=True, text=True, timeout=30, check=False
        )
        text = said.stdout + said.stderr
        if "fully validated" in text:
            return name, "secure"
        if "unsigned answer" in text:
            return name, "insecure"
        return name, "bogus" if ("resolution failed" in text or "no valid RRSIG" in text) else "?"

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, names))


def measure(label: str, run: object) -> tuple[object, dict[str, float]]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = run()  # type: ignore[operator]
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    cpu_children = (after_children.ru_utime + after_children.ru_stime) - (
        before_children.ru_utime + before_children.ru_stime
    )
    figures = {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "children_cpu_s": round(cpu_children, 2),
        "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
    }
    print(f"{label:8} {figures}")
    return result, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delv-workers", type=int, default=8)
    args = parser.parse_args()
    made = domains(args.domains)
    start = time.perf_counter()
    with DnsLab(domains=made) as lab:
        print(f"lab: {len(made)} domains signed and served in {time.perf_counter() - start:.1f} s")
        names = [d.name for d in made]
        ours, _ = measure("rempart", lambda: rempart(lab, names, args.concurrency))
        theirs: dict[str, str] = {}
        if shutil.which("delv"):
            theirs, _ = measure("delv", lambda: delv(lab, names, args.delv_workers))
    truth = {d.name: expected(d) for d in made}
    agree = sum(ours[n] == truth[n] for n in names)  # type: ignore[index]
    print(f"rempart matches the lab's truth on {agree}/{len(names)} domains")
    if theirs:
        same = sum(ours[n] == theirs[n] for n in names)  # type: ignore[index]
        print(f"rempart and delv agree on {same}/{len(names)} domains")


if __name__ == "__main__":
    main()
