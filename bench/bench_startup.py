"""Start-up time of the command line: `rempart --help` must answer in under 0.3 s.

    .venv/bin/python bench/bench_startup.py [--reps 20]

Each command runs as a whole process, measured with wait4 (wall clock, user+sys CPU,
peak RSS), ``--reps`` times; medians are printed, with a bare interpreter as the floor
and the heaviest modules `rempart --help` imports (``-X importtime``), so a regression
names its cause. Nothing here touches the network.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.3
RSS_UNIT_KIB = 1024 if sys.platform != "darwin" else 1  # ru_maxrss: KiB on Linux
COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "rempart --help": [sys.executable, "-m", "audit", "--help"],
    "rempart scan --help": [sys.executable, "-m", "audit", "scan", "--help"],
    "rempart --version": [sys.executable, "-m", "audit", "--version"],
}
ENTRY_POINT = Path(sys.executable).with_name("rempart")


def measure(command: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one run of ``command``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * RSS_UNIT_KIB / 2**20


def heaviest_imports(command: list[str], top: int = 6) -> list[tuple[int, str]]:
    """The modules with the largest cumulative import time (microseconds)."""
    run = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, check=True
    )
    rows = []
    for line in run.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(2)) <= 2:  # top-level imports only
            rows.append((int(match.group(1)), match.group(3)))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    commands = dict(COMMANDS)
    if ENTRY_POINT.exists():
        commands["rempart --help (console script)"] = [str(ENTRY_POINT), "--help"]
    print(f"{'command':<34} {'wall':>8} {'cpu':>8} {'peak':>9}   (median of {args.reps})")
    results = {}
    for name, command in commands.items():
        measure(command)  # warm the page cache
        runs = [measure(command) for _ in range(args.reps)]
        wall, cpu, rss = (statistics.median(values) for values in zip(*runs, strict=True))
        results[name] = wall
        print(f"{name:<34} {wall:>7.3f}s {cpu:>7.3f}s {rss:>6.1f} MiB")
    print("heaviest imports of rempart --help (cumulative):")
    for micros, module in heaviest_imports(COMMANDS["rempart --help"]):
        print(f"  {micros / 1e6:6.3f} s  {module}")
    wall = results["rempart --help"]
    verdict = "met" if wall < GOAL_S else "NOT met"
    print(f"SUMMARY startup: rempart --help {wall:.3f} s (goal < {GOAL_S} s: {verdict})")


if __name__ == "__main__":
    main()
