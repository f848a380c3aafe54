"""What the benchmarks share: timing one whole process as a user runs it.

Each contender (rempart, its peer) runs as a process of its own; wall time, user+sys
CPU and peak RSS come from ``wait4``, so imports, start-up and exit count as they do for
a user.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Collection


def measure(
    command: list[str],
    env: dict[str, str] | None = None,
    ok: Collection[int] = (0, 1),
) -> dict[str, float]:
    """Run one process; wall time, user+sys CPU and peak RSS (MiB) from wait4.

    ``ok``: the exit codes that mean it ran (1: rempart found failures; a gate's 3).
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in ok:
        error = process.stderr.read().decode()[-2000:] if process.stderr else ""
        raise SystemExit(f"{command[0]} failed ({status}): {error}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mib": usage.ru_maxrss / 1024,
    }
