"""Scan N loopback TLS endpoints in this process and report the traced Python heap as
targets complete (for the load test: collection and storage must stream).

    python load_probe.py CA_FILE DB PORT...

Prints one JSON object: the heap (MiB, ``tracemalloc``, without the buffers of the
connections in flight at that moment) after every tenth of the targets, and the scan's
finding counts.
"""

from __future__ import annotations

import json
import sys
import tracemalloc
from collections.abc import Sequence

from audit.engine import Progress, run_scan
from audit.models import Finding, Observation, Target
from audit.planning import ScanRequest, build_plan
from audit.registry import load_families
from audit.store import Store

IN_FLIGHT = (
    tracemalloc.Filter(False, "*/asyncio/*"),
    tracemalloc.Filter(False, "*/ssl.py"),
)
"""What the connections open at that moment hold (asyncio's TLS buffers are 256 KiB
each): it rises and falls with how many probes are in flight when the sample is taken,
which says nothing about whether the scan keeps what it has finished."""


def _settled_heap_mib() -> float:
    """The traced heap without the buffers of connections in flight."""
    snapshot = tracemalloc.take_snapshot().filter_traces(IN_FLIGHT)
    return sum(stat.size for stat in snapshot.statistics("filename")) / 2**20


def main() -> None:
    ca_file, db, *ports = sys.argv[1:]
    families = load_families()
    targets = tuple(f"tls://127.0.0.1:{port}?http_port=0" for port in ports)
    plan = build_plan(ScanRequest(targets, None, ("anssi-tls",), ca_file, 30.0, 32), families)
    tracemalloc.start()
    heap: list[float] = []
    done = [0]

    def on_target(target: Target, observation: Observation, findings: Sequence[Finding]) -> None:
        done[0] += 1
        if done[0] % max(1, len(targets) // 10) == 0:
            heap.append(_settled_heap_mib())

    summary = run_scan(plan, families, Store(db), progress=Progress(on_target=on_target))
    print(json.dumps({"heap_mib": heap, "counts": dict(summary.counts)}))


if __name__ == "__main__":
    main()
