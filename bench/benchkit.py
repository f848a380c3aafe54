"""What the benchmarks share: timing one whole process as a user runs it.

Each contender (rempart, its peer) runs as a process of its own; wall time, user+sys
CPU and peak RSS come from ``wait4``, so imports, start-up and exit count as they do for
a user. Rempart's own modules are byte-compiled first (:func:`compiled`), as installing
the wheel does and as the peers' pip installs were.
"""

from __future__ import annotations

import compileall
import functools
import itertools
import os
import subprocess
import time
from collections.abc import Collection, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def measure(
    command: list[str],
    env: dict[str, str] | None = None,
    ok: Collection[int] = (0, 1),
) -> dict[str, float]:
    """Run one process; wall time, user+sys CPU and peak RSS (MiB) from wait4.

    ``ok``: the exit codes that mean it ran (1: rempart found failures; a gate's 3).
    """
    compiled()
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


@functools.cache
def compiled() -> None:
    """Byte-compile rempart's packages once. Why: an editable install compiles a module
    on first import, and not at all where ``PYTHONDONTWRITEBYTECODE`` is set, so every
    measured run would compile our sources while the peer, installed by pip, reads its
    bytecode."""
    for package in ("audit", "checks", "reports"):
        compileall.compile_dir(ROOT / package, quiet=1)


def observe_on_loop(family: Any, targets: Iterable[Any], ctx: Any, concurrency: int) -> list[Any]:
    """Every target's observation by ``family`` alone, started on the probe loop at most
    ``concurrency`` at a time: as the engine runs a family that has ``start`` on its own
    threads, without the engine, store or report."""
    queue = iter(targets)
    observations: list[Any] = []
    pending: set[Future[Any]] = set()
    while True:
        more = itertools.islice(queue, concurrency - len(pending))
        pending.update(family.start(target, ctx) for target in more)
        if not pending:
            return observations
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        observations.extend(future.result() for future in done)
