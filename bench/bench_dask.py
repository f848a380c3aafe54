"""Threads against a Dask cluster on many loopback targets: throughput and memory.

    .venv/bin/python bench/bench_dask.py [--targets 20000] [--latency 0.05] [--tls 100]
                                         [--workers 2] [--threads 16] [--concurrency 32]
                                         [--shards 4] [--parts sim,tls,merge]

Two workloads, each scanned with the engine's thread pool and on a Dask cluster through the
``dask://HOST:PORT`` executor. The cluster is what a deployment runs: a ``dask scheduler``
process and a ``dask worker`` process with ``--workers`` worker processes of ``--threads``
threads, all on 127.0.0.1, started fresh for every run.

* ``sim``: N targets of the ``sim://`` family from ``tests/fakes.py``, which
  does no network I/O but sleeps ``--latency`` seconds per target (simulated I/O) and
  returns one resource judged by two rules;
* ``tls``: ``--tls`` real TLS endpoints (Python ``ssl`` servers of ``checks.tls.lab``, TLS
  1.2 + 1.3, certificates from a lab PKI) scanned by the ``tls`` family with every built-in
  pack that judges ``tls.endpoint``. The servers run in this process; each scan runs in a
  fresh child process.

A third ``sim`` run on Dask sets the window of in-flight futures above the number of
targets, which is what the engine did before it bounded them (everything submitted at
once): it shows what the bound saves. Each line reports the scan's wall time, targets per
second, the scanning process's peak RSS (``getrusage``), the cluster's peak RSS (scheduler,
nannies and workers, ``VmHWM``), and a digest of (fingerprint, status) to show every
executor found the same thing.

The ``merge`` part scans the ``sim`` workload in ``--shards`` slices (threads, one after
the other, each into its own store), then times ``rempart db merge`` of those stores into
a fresh history store, and a second, no-op merge of the same stores.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIM_DIR = ROOT / "tests"
POLICY = """\
policy: bench
title: Bench
version: "1"
params:
  allowed: {default: [80, 443]}
rules:
  - id: BENCH-PORT-001
    title: Only allowed ports
    resource: demo.item
    expect: {key: port, op: in, param: allowed}
    severity: high
    remediation: Close it.
  - id: BENCH-TAG-001
    title: Tagged with owner
    resource: demo.item
    where: {key: port, op: ne, value: 8080}
    expect: {key: tags, op: contains, value: owner}
    severity: low
    remediation: Tag it.
"""


# --- one measured scan (child process) -------------------------------------------------


def child(config: dict[str, Any]) -> dict[str, Any]:
    """Run one scan as configured; return its figures."""
    sys.path.insert(0, str(SIM_DIR))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(SIM_DIR), os.environ.get("PYTHONPATH")])
    )
    from audit.engine import run_scan
    from audit.store import Store

    with tempfile.TemporaryDirectory(prefix="rempart-bench-") as work:
        if config["workload"] == "merge":
            return _shards_then_merge(config, Path(work))
        plan, families = _plan(config, Path(work))
        store = Store(Path(work) / "bench.db")
        sampler = RssSampler()
        with _executor(config) as executor:
            began = time.perf_counter()
            summary = run_scan(plan, families, store, executor=executor, progress=sampler.progress)
            wall = time.perf_counter() - began
        peak_after_scan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {
            "wall_s": wall,
            "streaming_peak_mib": sampler.peak / 2**20,
            "targets": len(plan.targets),
            "status": summary.status,
            "findings": sum(summary.counts.get(s, 0) for s in ("pass", "fail", "error", "skip")),
            "errors": summary.counts.get("error", 0),
            "digest": _digest(store, summary.id),
            "parent_peak_mib": peak_after_scan,
        }


def _plan(config: dict[str, Any], work: Path) -> tuple[Any, Any]:
    from dataclasses import replace

    from audit.engine import ScanPlan
    from audit.models import Target
    from audit.plugins import CheckContext
    from audit.policy import load_policy
    from audit.registry import Families

    if config["workload"] == "tls":
        return _tls_plan(config)
    from fakes import SIM_FAMILY

    (work / "bench.yaml").write_text(POLICY)
    policy = load_policy(work / "bench.yaml", {"demo.item"})
    targets = tuple(Target(f"sim://t{i}", "sim", "127.0.0.1") for i in range(config["targets"]))
    plan = ScanPlan(
        targets=targets,
        policies=(policy,),
        context=CheckContext(timeout=30, options={"sim": {"latency": config["latency"]}}),
    )
    families = Families({"sim": SIM_FAMILY}, {"sim": SIM_FAMILY})
    return replace(plan, concurrency=config["concurrency"]), families


def _tls_plan(config: dict[str, Any]) -> tuple[Any, Any]:
    from dataclasses import replace

    from audit.planning import ScanRequest, build_plan
    from audit.registry import load_families

    families = load_families()  # every pack judging tls.endpoint applies
    uris = [f"tls://localhost:{port}?http_port=0" for port in config["ports"]]
    request = ScanRequest(tuple(uris), None, (), config["ca_file"], 30.0, config["concurrency"])
    plan = build_plan(request, families)
    return replace(plan, concurrency=config["concurrency"]), families


def _shards_then_merge(config: dict[str, Any], work: Path) -> dict[str, Any]:
    """Scan the sim workload in N shards (threads, one after the other), then merge them."""
    from audit.engine import run_scan
    from audit.scale.merge import merge_stores
    from audit.scale.sharding import select_shard
    from audit.store import Store

    plan, families = _plan({**config, "workload": "sim"}, work)
    count, paths, began = config["shards"], [], time.perf_counter()
    for k in range(1, count + 1):
        paths.append(work / f"shard-{k}.db")
        store = Store(paths[-1])
        run_scan(select_shard(plan, f"{k}/{count}"), families, store)
        store.close()
    scans_s, began = time.perf_counter() - began, time.perf_counter()
    result = merge_stores(work / "merged.db", paths, shards=count)
    merge_s, began = time.perf_counter() - began, time.perf_counter()
    again = merge_stores(work / "merged.db", paths, shards=count)
    remerge_s = time.perf_counter() - began
    assert not again.is_new
    merged = Store(work / "merged.db", readonly=True)
    return {
        "scans_s": scans_s,
        "merge_s": merge_s,
        "remerge_s": remerge_s,
        "targets": result.targets,
        "findings": result.findings,
        "digest": _digest(merged, result.scan_id),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


class RssSampler:
    """Resident memory sampled every 500 stored targets: the peak while findings stream in
    (the end of a scan then loads the whole scan once, for the score snapshot)."""

    def __init__(self) -> None:
        import psutil

        from audit.engine import Progress

        self.process, self.stored, self.peak = psutil.Process(), 0, 0
        self.progress = Progress(on_target=self.on_target)

    def on_target(self, *_: Any) -> None:
        self.stored += 1
        if self.stored % 500 == 0:
            self.peak = max(self.peak, self.process.memory_info().rss)


@contextlib.contextmanager
def _executor(config: dict[str, Any]) -> Iterator[Any]:
    """None (the engine's thread pool) or the Dask executor for the cluster at ``url``."""
    if config["executor"] == "threads":
        yield None
        return
    from audit.scale.executors import open_executor

    with open_executor(config["url"]) as executor:
        yield executor


def _digest(store: Any, scan_id: int) -> str:
    rows = sorted((f.fingerprint, f.status.value) for f in store.findings(scan_id))
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:12]


# --- orchestration (parent process) ----------------------------------------------------


def run_child(config: dict[str, Any]) -> dict[str, Any]:
    """One scan in a fresh process; on a fresh cluster when the executor is Dask."""
    if config["executor"] == "threads":
        return {**config, **_child_process(config), "cluster_peak_mib": 0.0, "cluster_s": 0.0}
    with dask_cluster(config["workers"], config["threads"]) as (url, processes, started_in):
        figures = _child_process({**config, "url": url})
        return {**config, **figures, "cluster_peak_mib": peak_mib(processes),
                "cluster_s": started_in}  # fmt: skip


def _child_process(config: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", json.dumps(config)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed ({config}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def dask_cluster(workers: int, threads: int) -> Iterator[tuple[str, list[Any], float]]:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, stopped on exit."""
    import importlib

    import psutil

    port, dask = _free_port(), str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{port}"
    began = time.perf_counter()
    scheduler = _quiet([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                        "--dashboard-address", "127.0.0.1:0"])  # fmt: skip
    worker = _quiet([dask, "worker", address, "--host", "127.0.0.1", "--nworkers", str(workers),
                     "--nthreads", str(threads), "--memory-limit", "0",
                     "--dashboard-address", "127.0.0.1:0"])  # fmt: skip
    distributed: Any = importlib.import_module("distributed")
    try:
        with distributed.Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)
        started_in = time.perf_counter() - began
        roots = [psutil.Process(scheduler.pid), psutil.Process(worker.pid)]
        yield f"dask://127.0.0.1:{port}", roots, started_in
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(timeout=60)


def _quiet(command: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SIM_DIR)}  # workers import the sim family
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def peak_mib(roots: list[Any]) -> float:
    """Sum of peak RSS (VmHWM) over the processes and their children."""
    total = 0
    for root in roots:
        for process in [root, *root.children(recursive=True)]:
            status = Path(f"/proc/{process.pid}/status").read_text()
            total += next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM"))
    return total / 1024


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def tls_servers(count: int) -> Iterator[tuple[list[int], str]]:
    """``count`` Python TLS servers on 127.0.0.1 and the CA file that trusts them."""
    from checks.tls import lab

    with lab.lab_directory() as work, contextlib.ExitStack() as stack:
        pki = lab.Pki(work / "pki")
        context = lab.server_context(pki.issue(["localhost"]))
        servers = [stack.enter_context(lab.PythonTlsServer(context)) for _ in range(count)]
        yield [s.port for s in servers], pki.ca_file


def line(result: dict[str, Any]) -> str:
    rate = result["targets"] / result["wall_s"]
    workers = f"{result['cluster_peak_mib']:.0f} MiB" if result["cluster_peak_mib"] else "—"
    cluster = f"{result['cluster_s']:.1f} s" if result["cluster_s"] else "—"
    streaming = result["streaming_peak_mib"]
    return (
        f"| {result['workload']} | {result['label']} | {result['targets']:,} | "
        f"{result['wall_s']:.1f} s | {rate:,.0f} | "
        f"{f'{streaming:.0f} MiB' if streaming else '—'} | {result['parent_peak_mib']:.0f} MiB | "
        f"{workers} | {cluster} | {result['findings']:,} | {result['digest']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--tls", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--parts", default="sim,tls,merge", help="which parts to run")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    parts = set(args.parts.split(","))
    cluster = {"workers": args.workers, "threads": args.threads}
    sim = {"workload": "sim", "targets": args.targets, "latency": args.latency, **cluster}
    runs = [
        {**sim, "executor": "threads", "concurrency": args.concurrency, "label": "threads"},
        {**sim, "executor": "dask", "concurrency": args.concurrency, "label": "dask"},
        {
            **sim,
            "executor": "dask",
            "concurrency": 4 * args.concurrency,
            "label": f"dask, --concurrency {4 * args.concurrency}",
        },
        {**sim, "executor": "dask", "concurrency": args.targets, "label": "dask, unbounded"},
    ]
    print("| workload | executor | targets | scan wall | targets/s | scanner RSS streaming | "
          "scanner peak RSS | cluster peak RSS | cluster start | findings | digest |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for config in runs if "sim" in parts else []:
        print(line(run_child(config)), flush=True)
    if args.tls and "tls" in parts:
        with tls_servers(args.tls) as (ports, ca_file):
            tls = {"workload": "tls", "ports": ports, "ca_file": ca_file, **cluster}
            for executor in ("threads", "dask"):
                config = {**tls, "executor": executor, "concurrency": args.concurrency}
                print(line(run_child({**config, "label": executor})), flush=True)
    if "merge" in parts:
        merge = {**sim, "workload": "merge", "shards": args.shards, "executor": "threads"}
        print_merge(run_child({**merge, "concurrency": args.concurrency}))


def print_merge(result: dict[str, Any]) -> None:
    print()
    print("| shards | targets | shard scans (one after the other) | merge | re-merge (no-op) "
          "| merge peak RSS | findings | digest |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    print(
        f"| {result['shards']} | {result['targets']:,} | {result['scans_s']:.1f} s | "
        f"{result['merge_s']:.1f} s | {result['remerge_s']:.2f} s | {result['peak_mib']:.0f} MiB "
        f"| {result['findings']:,} | {result['digest']} |"
    )


if __name__ == "__main__":
    main()
