"""A picklable, in-process check family for scale tests: ``sim://NAME``.

It observes nothing on the network: the facts of ``sim://NAME`` are derived from the
name (and the ``round`` setting, so a later scan can change some of them), which keeps
the check context tiny however many targets a test scans. It lives in its own module,
not in a conftest, because Dask worker processes must import it by name; the tests put
this directory on ``sys.path`` and ``PYTHONPATH`` before starting a cluster.

Settings (``ctx.options['sim']``):

- ``round``: int, shifts which items fail (default 1);
- ``latency``: seconds of simulated I/O per target;
- ``sleep``: ``{name: seconds}`` for particular targets;
- ``crash``: names whose collect ends the *worker process* (a native crash), never the
  process given as ``parent_pid``;
- ``trace_dir``: a directory where every collect attempt leaves a file, so a test can
  count attempts across processes.

Names starting with ``down`` are unreachable (a problem, not an exception).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult

from audit.errors import TargetError
from audit.models import Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext, CheckFamily, FactDoc, ResourceTypeDoc

PORTS = (22, 80, 443, 8080)


class Gauge:
    """How many collects run at once in this process, and the most there ever were."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.total = 0

    def reset(self) -> None:
        with self.lock:
            self.now = self.peak = self.total = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


RUNNING = Gauge()


def _parse(split: SplitResult, raw: str) -> Target:
    if not split.hostname:
        raise TargetError(f"{raw!r}: missing name")
    return Target(uri=f"sim://{split.hostname}", scheme="sim", host="127.0.0.1")


def facts_for(name: str, round_: int = 1) -> dict[str, object]:
    """The facts ``sim://NAME`` reports in a given round (deterministic)."""
    digest = hashlib.sha256(name.encode()).digest()
    port = PORTS[(digest[0] + (round_ if digest[1] % 3 == 0 else 0)) % len(PORTS)]
    tags = ["owner"] if digest[2] % 4 else []
    return {"port": port, "tags": tags}


def _collect(target: Target, ctx: CheckContext) -> Observation:
    options = ctx.family_options("sim")
    name = target.uri.removeprefix("sim://")
    RUNNING.enter()
    try:
        _trace(options.get("trace_dir"), name)
        _maybe_crash(options, name)
        delay = options.get("sleep", {}).get(name, options.get("latency", 0))
        if delay:
            time.sleep(delay)
        if name.startswith("down"):
            return Observation(target, problems=(Problem(Reason.UNREACHABLE, "no route"),))
        facts = facts_for(name, int(options.get("round", 1)))
        resource = Resource("demo.item", f"item://{name}", target.uri, target.system, facts)
        return Observation(target, resources=(resource,))
    finally:
        RUNNING.leave()


def _trace(directory: str | None, name: str) -> None:
    if directory:
        (Path(directory) / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}").touch()


def _maybe_crash(options: Mapping[str, Any], name: str) -> None:
    if name in options.get("crash", ()) and os.getpid() != options.get("parent_pid"):
        os._exit(70)


SIM_FAMILY = CheckFamily(
    name="sim",
    description="Simulated targets whose facts derive from their name",
    schemes=("sim",),
    resource_types=(
        ResourceTypeDoc(
            "demo.item",
            "An item",
            (FactDoc("port", "int", "a port"), FactDoc("tags", "list", "tags")),
        ),
    ),
    parse=_parse,
    collect=_collect,
)
