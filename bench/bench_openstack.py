"""Benchmark the openstack family on a project of 1,000+ resources, against Prowler.

    .venv/bin/python bench/bench_openstack.py [--resources 1000] [--reps 3]
                                              [--prowler .venv-prowler/bin/prowler]

A child process runs the lab (the real Keystone from ``.venv-keystone``, the services
faked on 127.0.0.1) seeded with the demo project plus bulk resources (security groups
with rules and ports, servers, volumes, images, containers, listeners). This process then
times, alternating, a whole-process ``rempart scan`` (openstack-baseline, SQLite store,
JSON report) and, when given, ``prowler openstack`` on the same project, ``--reps`` times
each, and prints medians: wall time, the child's user+sys CPU and peak RSS (``wait4``),
and the API requests the fake services answered (Keystone's token requests are not
counted: one per run). This process stays small on purpose (a parent's peak RSS would
show in its children's ``maxrss``); the lab's process holds the state.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def seed_bulk(data: Any, total: int) -> dict[str, int]:
    """Spread ``total`` extra resources over the main types (shapes of the api-ref samples)."""
    from checks.openstack.fake import image, listener, security_group, server, volume

    project = data.project_id
    share = {"security_groups": 0.25, "servers": 0.25, "volumes": 0.2, "images": 0.15}
    counts = {k: int(total * v) for k, v in share.items()}
    counts["containers"] = int(total * 0.1)
    counts["listeners"] = total - sum(counts.values())
    for i in range(counts["security_groups"]):
        rule = {"protocol": "tcp", "port_range_min": 443, "port_range_max": 443}
        ssh = {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}
        data.security_groups.append(
            security_group(f"sg-bulk-{i}", f"bulk-{i}", project, rule, *([ssh] if i % 7 else []))
        )
        data.ports.append({"id": f"port-bulk-{i}", "security_groups": [f"sg-bulk-{i}"]})
    for i in range(counts["servers"]):
        data.servers.append(server(f"srv-bulk-{i}", f"bulk-{i}", project, metadata={"i": str(i)}))
    for i in range(counts["volumes"]):
        data.volumes.append(volume(f"vol-bulk-{i}", f"bulk-{i}", project, encrypted=i % 2 == 0))
    for i in range(counts["images"]):
        data.images.append(image(f"img-bulk-{i:05}", f"bulk-{i}", project))
    for i in range(counts["containers"]):
        data.containers[f"bulk-{i:05}"] = {"X-Container-Object-Count": "1"}
    for i in range(counts["listeners"]):
        data.listeners.append(listener(f"lsn-bulk-{i}", f"bulk-{i}", "HTTPS", 443, "lb-1"))
    return counts


def serve(resources: int) -> None:
    """The lab's process: start, seed, print the environment, answer 'count' until 'stop'."""
    from checks.openstack.lab import Lab

    with Lab() as lab:
        lab.seed()
        assert lab.fake is not None
        counts = seed_bulk(lab.fake.data, resources)
        print(json.dumps({"env": lab.environment(), "counts": counts}), flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                with lab.fake.lock:
                    seen = len(lab.fake.requests)
                    lab.fake.requests.clear()
                print(json.dumps({"calls": seen}), flush=True)
            elif line.strip() == "stop":
                return


class LabChild:
    def __init__(self, resources: int) -> None:
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(resources)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.child.stdout is not None
        return dict(json.loads(self.child.stdout.readline()))

    def calls(self) -> int:
        assert self.child.stdin is not None
        self.child.stdin.write("count\n")
        self.child.stdin.flush()
        return int(self._answer()["calls"])

    def stop(self) -> None:
        assert self.child.stdin is not None
        self.child.stdin.write("stop\n")
        self.child.stdin.close()
        self.child.wait(timeout=60)


def run(cmd: list[str], env: dict[str, str], lab: LabChild, timeout: float) -> dict[str, Any]:
    """One child: wall time, its CPU and peak RSS (wait4), and the requests it made."""
    lab.calls()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        timer.cancel()
        out.seek(0)
        tail = out.read().decode("utf-8", "replace")[-600:]
    return {
        "seconds": round(seconds, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "calls": lab.calls(),
        "exit": os.waitstatus_to_exitcode(status),
        "tail": tail,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("seconds", "cpu_s", "peak_rss_mib", "calls")
    figures: dict[str, Any] = {k: statistics.median(float(r[k]) for r in runs) for k in keys}
    figures["walls"] = [r["seconds"] for r in runs]
    figures["exits"] = sorted({r["exit"] for r in runs})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--prowler", default="")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    print(f"load before: {os.getloadavg()[0]:.2f}")
    lab = LabChild(args.resources)
    env = {**os.environ, **lab.ready["env"]}
    total = sum(lab.ready["counts"].values()) + 20  # the seeded project's own resources
    work = Path(tempfile.mkdtemp(prefix="bench-openstack-"))
    tools: dict[str, list[dict[str, Any]]] = {"rempart": []}
    try:
        for rep in range(args.reps):
            cmd = [
                str(ROOT / ".venv" / "bin" / "rempart"), "scan", "openstack://lab-admin",
                "-p", "openstack-baseline", "--db", str(work / f"r{rep}.db"),
                "-o", str(work / f"r{rep}.json"), "--quiet",
            ]  # fmt: skip
            tools["rempart"].append(run(cmd, env, lab, 600))
            if args.prowler:
                cmd = [
                    args.prowler, "openstack", "--clouds-yaml-file", env["OS_CLIENT_CONFIG_FILE"],
                    "--clouds-yaml-cloud", "lab-admin", "--output-directory", str(work / "p"),
                    "--no-banner",
                ]  # fmt: skip
                tools.setdefault("prowler", []).append(run(cmd, env, lab, 900))
    finally:
        lab.stop()
    print(f"resources: {total} ({lab.ready['counts']})")
    for name, runs in tools.items():
        figures = summary(runs)
        per = figures["calls"] / total
        print(f"{name}: {json.dumps(figures)}  API requests per resource: {per:.3f}")
        if figures["exits"] != [0] and figures["exits"] != [1]:
            print(f"  last output of {name}: {runs[-1]['tail']}")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
