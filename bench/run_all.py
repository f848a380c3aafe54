"""Run every benchmark, each against its peer on the same targets, and print one summary.

    .venv/bin/python bench/run_all.py [--quick] [--only startup,store,...] [--log DIR]

Each benchmark is a script of this directory run as its own process (they start their own
loopback targets and time whole processes); its full output is streamed as it runs and
kept under ``--log``. The summary table at the end shows, per benchmark, how long it
took, whether it ended cleanly, and the lines that carry its figures (medians, ratios to
the peer, peak memory). ``--quick`` uses small sizes and one repetition: a smoke run to
see that every benchmark still works, not figures to publish. Peers that are not
installed (sslyze in /tmp/sslyze-venv, Prowler in /tmp/prowler-venv) are skipped with a
note by the benchmark itself.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass(frozen=True)
class Bench:
    """One benchmark: its script, arguments (full and quick) and the lines to keep."""

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...] | None
    keep: str
    """A regular expression: output lines that carry the figures."""
    timeout_s: float = 3600


BENCHES = (
    Bench("startup", "bench_startup.py", ("--reps", "20"), ("--reps", "5"),
          r"^(SUMMARY|rempart --help|python -c)"),
    Bench("store", "bench_store.py", ("--findings", "100000", "--html", "--repeat", "5"),
          ("--findings", "10000", "--html"), r"^(store scan|findings|diff|load_report|html)"),
    Bench("reports", "bench_reports.py", ("100000",), ("10000",), r"^\w+ +\d+ findings"),
    Bench("tls-20", "bench_tls.py", ("--servers", "20", "--runs", "3"),
          ("--servers", "8", "--runs", "1"), r"^(median|  ratio|sslyze not found)"),
    Bench("tls-100", "bench_tls.py", ("--servers", "100", "--runs", "1"), None,
          r"^(median|  ratio|sslyze not found)"),
    Bench("ports", "bench_ports.py", ("--listeners", "20", "--reps", "5"),
          ("--listeners", "5", "--reps", "1", "--sv", "0"), r"^(nmap|collect|rempart) +\d"),
    Bench("aws", "bench_aws.py", ("--resources", "1000", "--reps", "3"),
          ("--resources", "100", "--reps", "1", "--prowler", "/nonexistent"),
          r"^(rempart:|prowler:|speed-up|  resources|prowler: not installed)"),
    Bench("web", "bench_web.py", ("--sites", "200", "--runs", "3", "--observatory-sites", "20"),
          ("--sites", "30", "--runs", "1", "--observatory-sites", "3"),
          r"^(\d+ sites on|rempart|family|curl|observatory)"),
)  # fmt: skip


@dataclass
class Outcome:
    """What one benchmark did."""

    bench: Bench
    seconds: float
    exit_code: int
    figures: list[str]
    log: Path


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(bench: Bench, quick: bool, logs: Path) -> Outcome | None:
    """Run one benchmark, streaming its output; None when it has no quick form."""
    args = bench.quick if quick else bench.full
    if args is None:
        return None
    command = [sys.executable, str(HERE / bench.script), *args]
    log = logs / f"{bench.name}.log"
    print(f"\n=== {bench.name}: {' '.join(command[1:])}  (load {load_average()})", flush=True)
    started = time.perf_counter()
    lines: list[str] = []
    with log.open("w") as out, subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ) as process:  # fmt: skip
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            out.write(line)
            lines.append(line.rstrip("\n"))
        try:
            code = process.wait(timeout=bench.timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            code = -9
    keep = re.compile(bench.keep)
    figures = [line.strip() for line in lines if keep.search(line)] or lines[-3:]
    return Outcome(bench, time.perf_counter() - started, code, figures, log)


def summary(outcomes: list[Outcome]) -> str:
    """One table: benchmark, time, exit, then its figure lines."""
    rows = [f"{'benchmark':<10} {'took':>8} {'exit':>5}  figures", "-" * 100]
    for outcome in outcomes:
        first, *rest = outcome.figures or ["(no output)"]
        status = "ok" if outcome.exit_code == 0 else str(outcome.exit_code)
        rows.append(f"{outcome.bench.name:<10} {outcome.seconds:>7.1f}s {status:>5}  {first}")
        rows.extend(f"{'':<27}{line}" for line in rest)
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--log", type=Path, default=None, help="where to keep full outputs")
    args = parser.parse_args()
    wanted = {name for name in args.only.split(",") if name}
    unknown = wanted - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    logs = args.log or Path(tempfile.mkdtemp(prefix="rempart-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs, load {load_average()}, logs in {logs}")
    outcomes = [
        outcome
        for bench in BENCHES
        if not wanted or bench.name in wanted
        if (outcome := run(bench, args.quick, logs)) is not None
    ]
    print(f"\n=== summary ({'quick' if args.quick else 'full'}; load {load_average()})\n")
    print(summary(outcomes))
    sys.exit(0 if all(o.exit_code == 0 for o in outcomes) else 1)


if __name__ == "__main__":
    main()
