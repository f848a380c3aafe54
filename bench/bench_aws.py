"""Benchmark the aws family on a moto account of 1,000+ resources, against Prowler.

    .venv/bin/python bench/bench_aws.py [--resources 1000] [--prowler /tmp/prowler-venv/bin/prowler]

Starts a moto server on 127.0.0.1, seeds the lab plus bulk resources (security groups,
volumes, IAM users, buckets, customer policies), then times a whole-process
``rempart scan`` (CIS + baseline packs) and, when installed, ``prowler aws --compliance
cis_3.0_aws`` on the same account. API calls are counted at the server (one werkzeug log
record per HTTP request); peak memory is the child's maximum RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checks.aws.lab import Lab  # noqa: E402


class RequestCounter(logging.Handler):
    """Counts the HTTP requests the moto server answers."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "HTTP/1.1" in record.getMessage():
            self.count += 1


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


def run(
    cmd: list[str], env: dict[str, str], counter: RequestCounter, timeout: float
) -> dict[str, object]:
    """Run one child, measuring wall time, server-side calls and peak RSS."""
    before_calls = counter.count
    before_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        code: object = done.returncode
        tail = (done.stdout + done.stderr)[-400:]
    except subprocess.TimeoutExpired:
        code, tail = "timeout", ""
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": round(seconds, 2),
        "calls": counter.count - before_calls,
        "peak_rss_mib": round(max(peak, before_rss) / 1024, 1),
        "exit": code,
        "tail": tail,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--prowler", default="/tmp/prowler-venv/bin/prowler")
    parser.add_argument("--prowler-timeout", type=float, default=1800)
    args = parser.parse_args()

    counter = RequestCounter()
    with Lab() as lab:
        werkzeug = logging.getLogger("werkzeug")
        lab.seed()
        bulk = seed_bulk(lab, args.resources)
        werkzeug.setLevel(logging.INFO)
        werkzeug.propagate = False
        werkzeug.handlers = [counter]
        env = {**os.environ, **lab.environment(), "AWS_EC2_METADATA_DISABLED": "true"}
        work = Path(tempfile.mkdtemp(prefix="bench-aws-"))
        ours = run(
            [
                sys.executable,
                "-m",
                "audit",
                "scan",
                lab.target(),
                "-p",
                "cis-aws-foundations",
                "-p",
                "aws-baseline",
                "-o",
                str(work / "r.json"),
                "--db",
                str(work / "r.db"),
                "--quiet",
            ],
            env,
            counter,
            600,
        )
        report = json.loads((work / "r.json").read_text()) if (work / "r.json").exists() else {}
        resources = len(report.get("resources", []))
        ours.update(
            resources=resources,
            findings=len(report.get("findings", [])),
            calls_per_resource=round(int(ours["calls"]) / max(resources, 1), 2),
        )  # type: ignore[call-overload]
        print("seeded:", bulk)
        print("rempart:", {k: v for k, v in ours.items() if k != "tail"})
        if Path(args.prowler).exists():
            penv = {**env, "AWS_ENDPOINT_URL": lab.url}
            theirs = run(
                [
                    args.prowler,
                    "aws",
                    "--compliance",
                    "cis_3.0_aws",
                    "-f",
                    lab.region,
                    "-o",
                    str(work / "prowler"),
                    "--no-banner",
                ],
                penv,
                counter,
                args.prowler_timeout,
            )
            print("prowler:", {k: v for k, v in theirs.items() if k != "tail"})
            print("prowler tail:", theirs["tail"])
            if isinstance(theirs["seconds"], float) and ours["seconds"]:
                print("speed-up:", round(theirs["seconds"] / float(ours["seconds"]), 1))  # type: ignore[arg-type]
        else:
            print("prowler: not installed at", args.prowler)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
