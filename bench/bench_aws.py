"""Benchmark the aws family on a moto account of 1,000+ resources, against Prowler.

    .venv/bin/python bench/bench_aws.py [--resources 1000] [--reps 3] [--ops]
                                        [--prowler /tmp/prowler-venv/bin/prowler]
                                        [--rempart-root OTHER_TREE]

A child process runs a moto server on 127.0.0.1 seeded with the lab plus bulk resources
(security groups, volumes, IAM users, buckets, customer policies). This process then
times, alternating, a whole-process ``rempart scan`` (CIS + baseline packs, SQLite store,
JSON report) and, when installed, ``prowler aws --compliance cis_3.0_aws`` on the same
account, ``--reps`` times each, and prints medians. Per run: wall time, the child's
user+sys CPU and peak RSS (``wait4``), the server's CPU (from ``/proc``) and the API
calls it answered. ``--ops`` adds the server CPU per API operation of rempart's last run.

This process stays small on purpose: Linux keeps a parent's peak RSS in the ``maxrss`` of
the children it spawns, so spawning the tools from the process that holds the moto state
would report its size as theirs. The load average is printed before and after: figures
from a busy machine say so.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checks.aws.lab import REGION, Lab  # noqa: E402


def seed_bulk(lab: Lab, total: int) -> dict[str, int]:
    """Spread ``total`` extra resources over the main types."""
    share = {
        "security_groups": 0.4,
        "volumes": 0.3,
        "users": 0.15,
        "buckets": 0.1,
        "policies": 0.05,
    }
    counts = {k: int(total * v) for k, v in share.items()}
    ec2, iam, s3 = lab.client("ec2"), lab.client("iam"), lab.client("s3")
    vpc = lab.planted.extra["vpc"]
    for i in range(counts["security_groups"]):
        gid = ec2.create_security_group(GroupName=f"bulk-{i}", Description="bulk", VpcId=vpc)[
            "GroupId"
        ]
        if i % 10 == 0:
            ec2.authorize_security_group_ingress(
                GroupId=gid,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 22,
                        "ToPort": 22,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    }
                ],
            )
    for i in range(counts["volumes"]):
        ec2.create_volume(AvailabilityZone=f"{lab.region}a", Size=1, Encrypted=bool(i % 2))
    for i in range(counts["users"]):
        iam.create_user(UserName=f"bulk-user-{i}")
        if i % 3 == 0:
            iam.create_login_profile(UserName=f"bulk-user-{i}", Password="Bulk-Passw0rd-x!")
    for i in range(counts["buckets"]):
        s3.create_bucket(
            Bucket=f"bulk-bucket-{i:04d}",
            CreateBucketConfiguration={"LocationConstraint": lab.region},
        )
    doc = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )
    for i in range(counts["policies"]):
        iam.create_policy(PolicyName=f"bulk-policy-{i}", PolicyDocument=doc)
    return counts


class OperationTimer:
    """WSGI middleware on the moto app: server CPU (thread time) per API operation."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
        def timed(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            started = time.thread_time()
            body = list(app(environ, start_response))
            spent = time.thread_time() - started
            name = operation(environ)
            with self._lock:
                self.cpu[name] += spent
                self.count[name] += 1
            return body

        return timed

    def take(self) -> dict[str, Any]:
        """The figures since the last take, then zero."""
        with self._lock:
            figures = {"calls": sum(self.count.values()), "cpu": dict(self.cpu)}
            figures["count"] = dict(self.count)
            self.cpu.clear()
            self.count.clear()
        return figures


def operation(environ: dict[str, Any]) -> str:
    """``service:Operation`` from a request (JSON target, query action or S3 subresource)."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    service = auth.split("/")[3] if auth.count("/") > 3 else "?"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service}:{str(target).split('.')[-1]}"
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    if "Action" in query:
        return f"{service}:{query['Action'][0]}"
    method = environ.get("REQUEST_METHOD", "?")
    if method == "POST" and service != "s3":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return f"{service}:POST {length and 'form'}"
    sub = next(iter(query), "")
    return f"{service}:{method} {environ.get('PATH_INFO', '').count('/')}/{sub}"


def serve(resources: int) -> None:
    """Server mode: seed, print the URL, then answer ``take`` (JSON figures) or ``stop``."""
    timer = OperationTimer()
    with Lab() as lab:
        lab.seed()
        bulk = seed_bulk(lab, resources)
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        server = lab._server._server  # werkzeug's server inside ThreadedMotoServer
        server.app = timer.wrap(server.app)
        print(json.dumps({"url": lab.url, "seeded": bulk}), flush=True)
        for line in sys.stdin:
            if line.strip() == "take":
                print(json.dumps(timer.take()), flush=True)
            elif line.strip() == "stop":
                break


class Server:
    """The seeded moto server in its own process."""

    def __init__(self, resources: int):
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(resources)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        hello = self._answer()
        self.url, self.seeded = str(hello["url"]), hello["seeded"]

    def _answer(self) -> dict[str, Any]:
        out: IO[str] = self.child.stdout  # type: ignore[assignment]
        for line in out:
            if line.startswith("{"):
                return dict(json.loads(line))
        raise SystemExit("the moto server process ended early")

    def take(self) -> dict[str, Any]:
        """Calls and per-operation CPU since the last take."""
        self.child.stdin.write("take\n")  # type: ignore[union-attr]
        self.child.stdin.flush()  # type: ignore[union-attr]
        return self._answer()

    def cpu(self) -> float:
        """The server process's user+sys CPU seconds so far."""
        fields = Path(f"/proc/{self.child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.child.stdin.write("stop\n")  # type: ignore[union-attr]
        self.child.stdin.close()  # type: ignore[union-attr]
        self.child.wait(timeout=60)


def run(
    cmd: list[str], env: dict[str, str], server: Server, timeout: float, cwd: str | None = None
) -> dict[str, Any]:
    """Run one child: wall time, its CPU and peak RSS (wait4), server CPU and calls."""
    server.take()
    server_before = server.cpu()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        timer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        tail = out.read().decode("utf-8", "replace")[-400:]
    server_cpu = server.cpu() - server_before
    ops = server.take()
    return {
        "seconds": round(seconds, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "server_cpu_s": round(server_cpu, 2),
        "calls": ops["calls"],
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "exit": child.returncode,
        "tail": tail,
        "ops": ops,
    }


def median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(float(r[key]) for r in runs), 2)


def summary(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs (and every wall time, to show the spread)."""
    keys = ("seconds", "cpu_s", "server_cpu_s", "calls", "peak_rss_mib")
    figures: dict[str, Any] = {k: median(runs, k) for k in keys}
    figures["walls"] = [r["seconds"] for r in runs]
    figures["exits"] = sorted({str(r["exit"]) for r in runs})
    print(f"{name}:", figures)
    return figures


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rempart_command(target: str, work: Path, rep: int) -> list[str]:
    """A whole ``rempart scan``: both packs, a fresh store and a JSON report."""
    return [
        sys.executable,
        "-m",
        "audit",
        "scan",
        target,
        "-p",
        "cis-aws-foundations",
        "-p",
        "aws-baseline",
        "-o",
        str(work / f"r{rep}.json"),
        "--db",
        str(work / f"r{rep}.db"),
        "--quiet",
    ]


def prowler_command(prowler: str, work: Path, rep: int) -> list[str]:
    return [
        prowler,
        "aws",
        "--compliance",
        "cis_3.0_aws",
        "-f",
        REGION,
        "-o",
        str(work / f"prowler{rep}"),
        "--no-banner",
    ]


def print_operations(ops: dict[str, Any]) -> None:
    """Server CPU per operation of one run, most expensive first."""
    cpu, count = ops["cpu"], ops["count"]
    print(f"server CPU inside the moto app: {sum(cpu.values()):.2f} s over {ops['calls']} calls")
    for name, spent in sorted(cpu.items(), key=lambda kv: -kv[1])[:20]:
        calls = count[name]
        print(f"  {name:52s} {calls:5d} calls {spent:6.2f} s {1000 * spent / calls:6.1f} ms/call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ops", action="store_true", help="server CPU per API operation")
    parser.add_argument("--prowler", default="/tmp/prowler-venv/bin/prowler")
    parser.add_argument("--prowler-timeout", type=float, default=1800)
    parser.add_argument(
        "--rempart-root",
        help="run rempart from this source tree (python -m audit imports from the working "
        "directory first), e.g. an earlier version to compare against",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return

    server = Server(args.resources)
    print("seeded:", server.seeded)
    env = {**os.environ, **Lab().environment(), "AWS_EC2_METADATA_DISABLED": "true"}
    penv = {**env, "AWS_ENDPOINT_URL": server.url}
    target = f"aws://?endpoint={server.url}&regions={REGION}"
    has_prowler = Path(args.prowler).exists()
    work = Path(tempfile.mkdtemp(prefix="bench-aws-"))
    try:
        print("load average before:", load())
        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        for rep in range(args.reps):
            command = rempart_command(target, work, rep)
            ours.append(run(command, env, server, 600, args.rempart_root))
            print(f"  rempart run {rep + 1}: {ours[-1]['seconds']} s (load {load()})")
            if has_prowler:
                command = prowler_command(args.prowler, work, rep)
                theirs.append(run(command, penv, server, args.prowler_timeout))
                print(f"  prowler run {rep + 1}: {theirs[-1]['seconds']} s (load {load()})")
        print("load average after:", load())
        report = json.loads((work / "r0.json").read_text()) if (work / "r0.json").exists() else {}
        resources = len(report.get("resources", []))
        mine = summary("rempart", ours)
        print(
            f"  resources {resources}, findings {len(report.get('findings', []))}, "
            f"calls/resource {mine['calls'] / max(resources, 1):.2f}"
        )
        if not has_prowler:
            print("prowler: not installed at", args.prowler)
        else:
            other = summary("prowler", theirs)
            print("  prowler tail:", theirs[-1]["tail"].strip().splitlines()[-1:])
            print(
                f"speed-up (median wall): {other['seconds'] / mine['seconds']:.1f}x; "
                f"memory: {mine['peak_rss_mib']} vs {other['peak_rss_mib']} MiB"
            )
        if args.ops:
            print_operations(ours[-1]["ops"])
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
