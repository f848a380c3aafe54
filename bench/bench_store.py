"""Store and report throughput on synthetic findings (default 100,000).

    .venv/bin/python bench/bench_store.py [--findings 100000] [--html] [--repeat 5]
    .venv/bin/python bench/bench_store.py --history 52 [--repeat 3]

Writes two scans of N findings each (one target per 1,000 findings, as the engine
writes: one transaction per target), then times `findings` and `diff` queries and,
with --html, the committee report; then the whole commands `rempart findings` and
`rempart diff` (table and --json, output to /dev/null) on the same store. Prints one
line per measurement: the median and the best of --repeat runs, each in a fresh process
(a shared machine's noise is easily 20 %).

With --history N, writes N scans instead, times the write of each (first, median, last)
and measures what each adds to the file (pages in use, after a checkpoint): in the first
N-2 a tenth of the findings change from one scan to the next; the last two repeat the
scan before them, so the last one, where nothing changes, gives the bytes per unchanged
finding. Then times `rempart findings`, `rempart diff` and `rempart report -o r.html`
on the latest scan.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audit.cli.views import diff_scans
from audit.models import Finding, Resource, Severity, Status
from audit.store import Store

SEVERITIES = list(Severity)
RMPART = Path(sys.executable).parent / "rempart"
# whole commands, as a user runs them on the store (import, query, print)
COMMANDS = (("findings",), ("findings", "--json"), ("diff",), ("diff", "--json"))
CONTROLS = {"cis-v8": ("4.4",)}  # one map per rule, shared as the engine shares it


def synthetic(scan: int, target: int, per_target: int) -> tuple[list[Resource], list[Finding]]:
    """One target's resources and findings; a tenth of them change between scans."""
    resources, findings = [], []
    for i in range(per_target // 10):
        key = f"tcp://10.{target // 256}.{target % 256}.{i}:443"
        resources.append(
            Resource(
                "net.service",
                key,
                f"ports://t{target}",
                f"sys{target % 7}",
                {"port": 443, "service": "https", "i": i},
            )
        )
        for r in range(10):
            failing = (i + r + (scan if r == 0 else 0)) % 3 == 0
            findings.append(
                Finding(
                    rule_id=f"BENCH-RULE-{r:03d}",
                    policy="bench",
                    title=f"rule {r}",
                    resource_type="net.service",
                    resource_key=key,
                    target=f"ports://t{target}",
                    system=f"sys{target % 7}",
                    status=Status.FAIL if failing else Status.PASS,
                    severity=SEVERITIES[r % 5],
                    message="expected something",
                    evidence={"port": 443},
                    controls=CONTROLS,
                    remediation="fix it",
                )
            )
    return resources, findings


def _cpu() -> float:
    """CPU seconds of this process and of the commands it ran and waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(label: str, fn, laps: dict[str, list[tuple[float, float]]]):  # type: ignore[no-untyped-def]
    started, cpu = time.perf_counter(), _cpu()
    result = fn()
    wall, cpu = time.perf_counter() - started, _cpu() - cpu
    laps.setdefault(label, []).append((wall, cpu))
    return result


def one_run(args: argparse.Namespace, laps: dict[str, list[tuple[float, float]]]) -> None:
    """Two scans into a fresh store, then the reads; every step timed into ``laps``."""
    per_target = 1000
    targets = max(1, args.findings // per_target)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        ids = []
        batches = [[synthetic(scan, t, per_target) for t in range(targets)] for scan in range(2)]
        for scan in range(2):

            def write(scan: int = scan) -> int:
                scan_id = store.begin_scan(
                    policies=["bench@1"],
                    inventory=None,
                    scope_declared=True,
                    targets=[],
                    systems=[],
                    tool_version="bench",
                )
                for batch in batches[scan]:
                    store.record(scan_id, *batch)
                store.finish_scan(scan_id, "complete")
                return scan_id

            label = f"store scan {scan + 1} ({targets * per_target} findings)"
            ids.append(timed(label, write, laps))
        timed("findings (all, with lifecycle)", lambda: store.findings(ids[1]), laps)
        timed(
            "findings --severity critical",
            lambda: store.findings(ids[1], severity="critical"),
            laps,
        )
        timed("diff", lambda: diff_scans(store, ids[0], ids[1]), laps)
        if args.html:
            from audit.reporting import RenderOptions
            from audit.writing import write_report

            data = timed("load_report", lambda: store.load_report(ids[1]), laps)
            timed(
                "html report",
                lambda: write_report(data, str(Path(tmp) / "r.html"), None, RenderOptions()),
                laps,
            )
        store.close()
        for argv in COMMANDS:
            command = [str(RMPART), *argv, "--db", str(Path(tmp) / "bench.db")]
            timed(
                f"$ rempart {' '.join(argv)}",
                lambda command=command: subprocess.run(
                    command, check=True, stdout=subprocess.DEVNULL
                ),
                laps,
            )


def used_bytes(path: Path) -> int:
    """Bytes of the store's pages in use (the file less its free pages), WAL checkpointed."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, free, size = (
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "freelist_count", "page_size")
        )
        return int((pages - free) * size)
    finally:
        conn.close()


def history_run(args: argparse.Namespace, laps: dict[str, list[tuple[float, float]]]) -> None:
    """N scans into a fresh store, each timed and measured, then the reading commands."""
    per_target = 1000
    targets = max(1, args.findings // per_target)
    findings = targets * per_target
    churning = max(3, args.history - 2)  # then two scans that repeat the last one
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = Store(db)
        writes, sizes = [], []
        for scan in range(args.history):
            batches = [synthetic(min(scan, churning - 1), t, per_target) for t in range(targets)]
            started = time.perf_counter()
            scan_id = store.begin_scan(
                policies=["bench@1"],
                inventory=None,
                scope_declared=True,
                targets=[],
                systems=[],
                tool_version="bench",
            )
            for batch in batches:
                store.record(scan_id, *batch)
            store.finish_scan(scan_id, "complete")
            writes.append(time.perf_counter() - started)
            sizes.append(used_bytes(db))
        store.close()
        laps.setdefault("store scan 1", []).append((writes[0], 0.0))
        laps.setdefault("store scan, median of all", []).append((statistics.median(writes), 0.0))
        laps.setdefault(f"store scan {args.history}", []).append((writes[-1], 0.0))
        growth = (sizes[churning - 1] - sizes[2]) / max(1, churning - 3)
        laps.setdefault("MB added per scan, 10 % changing", []).append((growth / 1e6, 0.0))
        laps.setdefault("bytes per unchanged finding per scan", []).append(
            ((sizes[-1] - sizes[-2]) / findings, 0.0)
        )
        laps.setdefault(f"MB in use after {args.history} scans", []).append((sizes[-1] / 1e6, 0.0))
        for argv in (("findings",), ("diff",), ("report", "-o", str(Path(tmp) / "r.html"))):
            command = [str(RMPART), *argv, "--db", str(db)]
            timed(
                f"$ rempart {argv[0]}",
                lambda command=command: subprocess.run(
                    command, check=True, stdout=subprocess.DEVNULL
                ),
                laps,
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--html", action="store_true")
    parser.add_argument("--history", type=int, default=0, metavar="N", help="write N scans")
    parser.add_argument(
        "--repeat", type=int, default=1, help="fresh processes; prints the median and the best"
    )
    parser.add_argument("--emit-laps", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    laps: dict[str, list[tuple[float, float]]] = {}
    if args.emit_laps:
        (history_run if args.history else one_run)(args, laps)
        print(json.dumps(laps))
        return
    for _ in range(args.repeat):
        # one process per run, as each command is: runs sharing a heap slow each other down
        command = [sys.executable, __file__, "--findings", str(args.findings), "--emit-laps"]
        options = [*(["--html"] if args.html else []), "--history", str(args.history)]
        output = subprocess.run(
            [*command, *options],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for label, runs in json.loads(output.splitlines()[-1]).items():
            laps.setdefault(label, []).extend(tuple(run) for run in runs)
    header = f"{'':<40} {'median wall':>12} {'best wall':>10} {'median cpu':>11}"
    print(f"{header}  ({args.repeat} runs)")
    for label, runs in laps.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        if "MB" in label or "bytes" in label:  # a size: median and smallest
            print(f"{label:<40} {statistics.median(walls):12.2f} {min(walls):10.2f}")
            continue
        print(
            f"{label:<40} {statistics.median(walls):10.2f} s {min(walls):8.2f} s "
            f"{statistics.median(cpus):9.2f} s"
        )


if __name__ == "__main__":
    main()
